//! Data exports (issue 14 §3): a person's export holds what is held about them across
//! organizations and nothing of anyone else; an organization's export holds every row of
//! it and nothing of another; only whoever asked downloads it, until it expires.

use crate::helpers::{TestApp, TestOrg, TestUser};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

const REQUEST: &str = "mutation($s: DataExportScope!) { requestDataExport(input: {scope: $s}) \
    { dataExport { id scope status downloadUrl } } }";
const LIST: &str = "{ dataExports(first: 10) { nodes { id scope status downloadUrl sha256 sizeBytes expiresAt } } }";

async fn request(
    app: &TestApp,
    user: &TestUser,
    org: Option<&TestOrg>,
    scope: &str,
) -> crate::helpers::GqlResponse {
    let mut gql = app.gql(REQUEST).vars(json!({ "s": scope })).as_user(user);
    if let Some(org) = org {
        gql = gql.in_org(org);
    }
    gql.send().await
}

/// Waits until the caller's export `id` is no longer pending; returns it.
async fn finished(app: &TestApp, user: &TestUser, id: &str) -> Value {
    for _ in 0..200 {
        let list = app.gql(LIST).as_user(user).send().await;
        let found = list.data()["dataExports"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .expect("the export is listed for whoever asked");
        if found["status"] != "PENDING" {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the export stayed pending");
}

async fn download(app: &TestApp, token: Option<&str>, url: &str) -> reqwest::Response {
    let mut request = app.http.get(format!("{}{url}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The archive's files by name, after checking the manifest's counts and digests.
fn unpack(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        files.insert(file.name().unwrap().to_string(), text);
    }
    let manifest: Value = serde_json::from_str(&files["manifest.json"]).unwrap();
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        files.len() - 1,
        "every file is in the manifest"
    );
    for entry in listed {
        let name = format!("{}.ndjson", entry["table"].as_str().unwrap());
        let text = &files[&name];
        assert_eq!(entry["rows"], text.lines().count(), "{name}");
        let digest: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["sha256"], digest, "{name}");
    }
    files
}

async fn document(app: &TestApp, user: &TestUser, org: &TestOrg, title: &str) {
    let project = app
        .gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
        .vars(json!({ "n": format!("{title} project") }))
        .as_user(user)
        .in_org(org)
        .send()
        .await
        .data()["createProject"]["project"]["id"]
        .clone();
    app.gql("mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t, body: \"Body\"}) { document { id } } }")
        .vars(json!({ "p": project, "t": title }))
        .as_user(user)
        .in_org(org)
        .send()
        .await
        .data();
}

#[tokio::test]
async fn a_person_exports_what_is_held_about_them_and_nothing_of_anyone_else() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let acme = app.org(&owner, "Acme").await;
    let globex = app.org(&owner, "Globex").await;
    let alice = app.user("alice@example.com").await;
    app.add_member(&owner, &acme, &alice, "MEMBER").await;
    app.add_member(&owner, &globex, &alice, "MEMBER").await;
    // Alice logs in from her own address; her documents in both organizations.
    let alice = {
        let tokens = app
            .log_in_from("127.0.0.42", &alice.email, crate::helpers::PASSWORD)
            .await;
        TestUser {
            token: tokens.data()["logIn"]["accessToken"]
                .as_str()
                .unwrap()
                .to_owned(),
            ..alice
        }
    };
    document(&app, &alice, &acme, "Alice in Acme").await;
    document(&app, &alice, &globex, "Alice in Globex").await;
    document(&app, &owner, &acme, "The owner's own").await;

    let asked = request(&app, &alice, None, "PERSON").await;
    let asked = &asked.data()["requestDataExport"]["dataExport"];
    assert_eq!(asked["scope"], "PERSON");
    let id = asked["id"].as_str().unwrap();
    let ready = finished(&app, &alice, id).await;
    assert_eq!(ready["status"], "READY", "{ready}");
    let url = ready["downloadUrl"].as_str().unwrap();
    // Prepared by a job enqueued with the request (run again if its worker died).
    // The worker marks its job done just after the export turns READY: wait for it.
    let mut prepared = Vec::new();
    for _ in 0..200 {
        prepared = app
            .state
            .jobs
            .list(None, Some(tenancy::PREPARE_EXPORT))
            .await
            .unwrap();
        if prepared
            .iter()
            .all(|job| job.state != jobs::JobState::Running)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(prepared.len(), 1);
    assert_eq!(prepared[0].state, jobs::JobState::Done);
    assert_eq!(
        prepared[0].unique_key.as_deref(),
        Some(
            crate::helpers::global_id_uuid(id, "DataExport")
                .unwrap()
                .to_string()
                .as_str()
        )
    );

    // Someone else, or nobody, cannot have it.
    let theirs = download(&app, Some(&owner.token), url).await;
    assert_eq!(theirs.status(), 404);
    let body: Value = theirs.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(download(&app, None, url).await.status(), 401);
    let owners_list = app.gql(LIST).as_user(&owner).send().await;
    assert_eq!(owners_list.data()["dataExports"]["nodes"], json!([]));

    let response = download(&app, Some(&alice.token), url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(ready["sha256"], digest);
    assert_eq!(ready["sizeBytes"], bytes.len());
    let files = unpack(&bytes);
    let all = files.values().cloned().collect::<Vec<_>>().join("\n");
    // Hers: the account, her session's address, her documents in both organizations,
    // her memberships, her audit events (decrypted).
    assert!(files["users.ndjson"].contains("alice@example.com"));
    assert_eq!(
        files["sessions.ndjson"].lines().count(),
        2,
        "sign-up's and log-in's"
    );
    // Addresses are held in the audit trail (encrypted): exported decrypted.
    let platform = &files["platform/audit_events.ndjson"];
    assert!(
        platform.contains("user.logged_in") && platform.contains("127.0.0.42"),
        "{platform}"
    );
    assert!(all.contains("Alice in Acme") && all.contains("Alice in Globex"));
    let memberships: usize = files
        .iter()
        .filter(|(name, _)| name.ends_with("/memberships.user_id.ndjson"))
        .map(|(_, text)| text.lines().count())
        .sum();
    assert_eq!(memberships, 2);
    assert!(
        files
            .iter()
            .any(|(name, text)| name.ends_with("/audit_events.ndjson")
                && text.contains("document.created")),
        "her audit events are exported"
    );
    // Nobody else's: not the owner's email or document, no credentials.
    assert!(!all.contains("owner@example.com"), "{all}");
    assert!(!all.contains("The owner's own"));
    for secret in ["password_hash", "token_hash", "secret_hash", "\"key\""] {
        assert!(!all.contains(secret), "{secret} is exported");
    }

    // Erasing her account takes her exports with it; the retention run deletes the
    // archive that lost its row.
    app.gql("mutation($p: String!) { deleteAccount(input: {password: $p}) { deletedUserId } }")
        .vars(json!({ "p": crate::helpers::PASSWORD }))
        .as_user(&alice)
        .send()
        .await
        .data();
    let archive = gateway::background::data_export::archive_path(&app.state, uuid_of(id));
    assert!(archive.exists());
    let report = app.retention_run().await;
    assert_eq!(report.expired_exports, 1, "{report:?}");
    assert!(!archive.exists());
}

#[tokio::test]
async fn an_owner_exports_every_row_of_the_organization_until_it_expires() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let acme = app.org(&owner, "Acme").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&owner, &acme, &admin, "ADMIN").await;
    document(&app, &owner, &acme, "Acme's handbook").await;
    let other = app.user("other@example.com").await;
    let globex = app.org(&other, "Globex").await;
    document(&app, &other, &globex, "Globex secrets").await;

    // A key's digest is a credential: it must not be in the export.
    app.api_key(&owner, &acme, "VIEWER").await;
    // An admin may not.
    let refused = request(&app, &admin, Some(&acme), "ORGANIZATION").await;
    assert_eq!(refused.code(), "FORBIDDEN");
    // Another organization's owner cannot export Acme.
    let foreign = request(&app, &other, Some(&acme), "ORGANIZATION").await;
    assert_eq!(foreign.code(), "FORBIDDEN");

    let asked = request(&app, &owner, Some(&acme), "ORGANIZATION").await;
    let id = asked.data()["requestDataExport"]["dataExport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ready = finished(&app, &owner, &id).await;
    assert_eq!(ready["status"], "READY");
    let url = ready["downloadUrl"].as_str().unwrap().to_owned();
    // The admin cannot download the owner's export either.
    assert_eq!(download(&app, Some(&admin.token), &url).await.status(), 404);
    let bytes = download(&app, Some(&owner.token), &url)
        .await
        .bytes()
        .await
        .unwrap();
    let files = unpack(&bytes);
    // One file per table of the organization, each with exactly its rows.
    let (db, backend) = app.whole_database().await;
    for table in tenancy::PURGED_TABLES
        .iter()
        .chain(["organizations"].iter())
    {
        let column = if *table == "organizations" {
            "id"
        } else {
            "organization_id"
        };
        let sql = if backend == sea_orm::DbBackend::Postgres {
            format!("SELECT count(*) FROM {table} WHERE {column} = $1")
        } else {
            format!("SELECT count(*) FROM {table} WHERE {column} = ?")
        };
        use sea_orm::ConnectionTrait;
        let count: i64 = db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [acme.org_id().as_uuid().into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        let exported = files[&format!("{table}.ndjson")].lines().count();
        // The export itself added its request event after the snapshot.
        if *table == "audit_events" {
            assert!(exported as i64 >= count - 2 && exported > 0, "{table}");
        } else {
            assert_eq!(exported as i64, count, "{table}");
        }
    }
    let all = files.values().cloned().collect::<Vec<_>>().join("\n");
    assert!(all.contains("Acme's handbook"));
    assert!(!all.contains("Globex secrets"));
    assert!(!all.contains("token_hash") && !all.contains("secret_hash"));

    // Expired: 410 with a reason; the retention run deletes the archive and the row.
    app.clock.advance(chrono::Duration::hours(25));
    let owner = app.relog(&owner).await;
    let gone = download(&app, Some(&owner.token), &url).await;
    assert_eq!(gone.status(), 410);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["reason"], "EXPIRED");
    let report = app.retention_run().await;
    assert_eq!(report.expired_exports, 1, "{report:?}");
    let archive = gateway::background::data_export::archive_path(&app.state, uuid_of(&id));
    assert!(!archive.exists());
    let list = app.gql(LIST).as_user(&owner).send().await;
    assert_eq!(list.data()["dataExports"]["nodes"], json!([]));
    assert_eq!(download(&app, Some(&owner.token), &url).await.status(), 404);
}

fn uuid_of(id: &str) -> uuid::Uuid {
    crate::helpers::global_id_uuid(id, "DataExport").unwrap()
}
