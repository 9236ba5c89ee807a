//! Authorization benchmarks: decision latency by policy size (template rows scanned per
//! check) and by number of record grants (graph lookups), and the cold compile of one
//! organization's policy. `make bench` runs them; figures go into issue notes.

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
    let mut p = builtin_rows();
    let mut i = 0;
    while p.len() < rows {
        p.push(vec![
            format!("custom_{}", i % 20),
            ORG.into(),
            "project".into(),
            format!("act{i}"),
            "allow".into(),
        ]);
        i += 1;
    }
    p.truncate(rows.max(1));
    let mut g = vec![vec!["user:me".into(), "member".into(), ORG.into()]];
    let mut g2 = vec![vec!["user:me".into(), "role:member".into()]];
    for u in 0..1000 {
        g.push(vec![format!("user:{u}"), "viewer".into(), ORG.into()]);
    }
    for n in 0..grants {
        g2.push(vec![
            format!("user:{}", n % 1000),
            format!("document:{n:032x}/editor"),
        ]);
    }
    g2.push(vec!["user:me".into(), "document:target/editor".into()]);
    Snapshot { p, g, g2 }
}

fn request(action: &str, obj: &str) -> [String; 7] {
    [
        "user:me".into(),
        ORG.into(),
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

criterion_group!(benches, decisions);
criterion_main!(benches);
