//! Authorization benchmarks: decision latency by policy size (template rows scanned per
//! check) and by number of record grants (graph lookups), uncached checks spread over
//! 1,000 cached organizations versus 10, the memory of 1,000 cached organizations, and
//! the cold compile of one organization's policy. `make bench` runs them; figures go into
//! issue notes.

// A benchmark fails loudly when its set-up fails.
#![allow(clippy::expect_used)]

use authz::bench_support::{Snapshot, builtin_rows, compile};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kernel::OrgId;
use std::hint::black_box;

const ORG: &str = "0190f000-0000-7000-8000-000000000001";

fn org() -> OrgId {
    OrgId::from_uuid(uuid::Uuid::parse_str(ORG).expect("uuid"))
}

/// Built-ins plus custom rules up to `rows` template rows, `grants` record grants spread
/// over 1,000 users, and the subject assigned `member`.
fn snapshot(rows: usize, grants: usize) -> Snapshot {
    snapshot_of(ORG, rows, grants)
}

/// The same for the organization `org`.
fn snapshot_of(org: &str, rows: usize, grants: usize) -> Snapshot {
    let mut p = builtin_rows();
    let mut i = 0;
    while p.len() < rows {
        p.push(vec![
            format!("custom_{}", i % 20),
            org.into(),
            "project".into(),
            format!("act{i}"),
            "allow".into(),
        ]);
        i += 1;
    }
    p.truncate(rows.max(1));
    let mut g = vec![vec!["user:me".into(), "member".into(), org.into()]];
    let mut g2 = vec![vec!["user:me".into(), "role:member".into()]];
    for u in 0..1000 {
        g.push(vec![format!("user:{u}"), "viewer".into(), org.into()]);
    }
    for n in 0..grants {
        g2.push(vec![
            format!("user:{}", n % 1000),
            format!("document:{n:032x}/editor"),
        ]);
    }
    g2.push(vec!["user:me".into(), "document:target/editor".into()]);
    Snapshot {
        p,
        g,
        g2,
        ..Snapshot::default()
    }
}

fn request(action: &str, obj: &str) -> [String; 7] {
    request_in(ORG, action, obj)
}

fn request_in(org: &str, action: &str, obj: &str) -> [String; 7] {
    [
        "user:me".into(),
        org.into(),
        "document".into(),
        obj.into(),
        String::new(),
        String::new(),
        action.into(),
    ]
}

fn decisions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("check_by_template_rows");
    for rows in [10usize, 39, 100, 1000] {
        let compiled = runtime
            .block_on(compile(org(), snapshot(rows, 1000)))
            .expect("compile");
        group.bench_with_input(BenchmarkId::from_parameter(rows), &rows, |b, _| {
            b.iter(|| compiled.enforce_uncached(black_box(&request("update", "document:target"))))
        });
    }
    group.finish();

    let compiled = runtime
        .block_on(compile(org(), snapshot(100, 1000)))
        .expect("compile");
    let remembered = request("update", "document:target");
    compiled.enforce(&remembered).expect("decide");
    c.bench_function("check_remembered_decision", |b| {
        b.iter(|| compiled.enforce(black_box(&remembered)))
    });

    let mut group = c.benchmark_group("check_by_grants");
    group.sample_size(20);
    for grants in [1_000usize, 1_000_000] {
        let compiled = runtime
            .block_on(compile(org(), snapshot(39, grants)))
            .expect("compile");
        group.bench_with_input(BenchmarkId::from_parameter(grants), &grants, |b, _| {
            b.iter(|| compiled.enforce_uncached(black_box(&request("update", "document:target"))))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cold_compile_one_org");
    group.sample_size(20);
    group.bench_function("100_rows_1000_grants", |b| {
        b.iter(|| {
            runtime
                .block_on(compile(org(), snapshot(100, 1000)))
                .expect("compile")
        })
    });
    group.finish();
}

/// Resident memory of this process, in bytes (Linux).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Organizations with 100 template rows and 100 grants each, compiled.
fn organizations(
    runtime: &tokio::runtime::Runtime,
    count: usize,
) -> Vec<(String, authz::bench_support::Compiled)> {
    (0..count)
        .map(|n| {
            let org = format!("0190f000-0000-7000-8000-{n:012x}");
            let id = OrgId::from_uuid(uuid::Uuid::parse_str(&org).expect("uuid"));
            let compiled = runtime
                .block_on(compile(id, snapshot_of(&org, 100, 100)))
                .expect("compile");
            (org, compiled)
        })
        .collect()
}

fn many_organizations(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let before = resident_bytes();
    let thousand = organizations(&runtime, 1_000);
    let after = resident_bytes();
    println!(
        "memory of 1,000 compiled organizations (100 rows, 100 grants each): {:.1} MiB resident ({:.1} KiB each)",
        (after.saturating_sub(before)) as f64 / 1_048_576.0,
        (after.saturating_sub(before)) as f64 / 1_024.0 / 1_000.0
    );
    let ten = organizations(&runtime, 10);
    let mut group = c.benchmark_group("uncached_check_across_orgs");
    for (label, orgs) in [("10_orgs", &ten), ("1000_orgs", &thousand)] {
        let requests: Vec<[String; 7]> = orgs
            .iter()
            .map(|(org, _)| request_in(org, "update", "document:target"))
            .collect();
        let mut i = 0usize;
        group.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % orgs.len();
                orgs[i].1.enforce_uncached(black_box(&requests[i]))
            })
        });
    }
    group.finish();
}

/// `check(1M grants) / check(1k grants)` measured interleaved (the same moments of the
/// machine for both), as the median of per-round means: criterion's separate runs drift
/// with the load of a shared machine.
fn grants_ratio(_: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let small = runtime
        .block_on(compile(org(), snapshot(39, 1_000)))
        .expect("compile");
    let large = runtime
        .block_on(compile(org(), snapshot(39, 1_000_000)))
        .expect("compile");
    let asked = request("update", "document:target");
    let round = |compiled: &authz::bench_support::Compiled| {
        let started = std::time::Instant::now();
        for _ in 0..2_000 {
            let _ = black_box(compiled.enforce_uncached(black_box(&asked)));
        }
        started.elapsed().as_secs_f64() / 2_000.0
    };
    let (mut small_times, mut large_times) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        small_times.push(round(&small));
        large_times.push(round(&large));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, l) = (median(&mut small_times), median(&mut large_times));
    println!(
        "check with 1k grants {:.1} us, with 1M grants {:.1} us: ratio {:.2} (target <= 1.2)",
        s * 1e6,
        l * 1e6,
        l / s
    );
}

criterion_group!(benches, decisions, many_organizations, grants_ratio);
criterion_main!(benches);
