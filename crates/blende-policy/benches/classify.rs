//! Cost of one verdict: the share guard re-checks the shared window on every frame.
//! Run: `cargo bench -p blende-policy --bench classify`.

use std::hint::black_box;

use blende_policy::{AppFacts, Os, Policy, Source, WindowInfo};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<WindowInfo> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/windows.tsv")).expect("corpus");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let facts = AppFacts::from_columns(c.get(5).copied().unwrap_or(""), c.get(6).copied().unwrap_or(""));
            Some(WindowInfo::new(Os::parse(c.first()?)?, *c.get(1)?, *c.get(2)?).with_facts(facts))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let windows = corpus();
    let builtin = Policy::builtin();
    let admin_text =
        (0..20).map(|i| format!("[[share.block]]\napp = \"tool{i}\"\n[[share.block]]\nsite = \"intranet{i}\"\n")).collect::<String>();
    let layered = Policy::try_from_sources(Some(Source { name: "admin.toml", text: &admin_text }), None).expect("policy");

    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(windows.len() as u64));
    g.bench_function("corpus/builtin", |b| b.iter(|| windows.iter().filter(|w| builtin.classify(black_box(w)).is_allowed()).count()));
    g.bench_function("corpus/40-admin-rules", |b| {
        b.iter(|| windows.iter().filter(|w| layered.classify(black_box(w)).is_allowed()).count())
    });
    g.finish();

    let mut g = c.benchmark_group("classify-one");
    let browser =
        WindowInfo::new(Os::Windows, "Microsoft Edge", "Dienstanweisung Datenschutz - Intranet - Arbeit – Microsoft\u{200B} Edge");
    let app = WindowInfo::new(Os::Linux, "libreoffice-writer", "Bescheid_Entwurf.odt - LibreOffice Writer");
    let long = WindowInfo::new(Os::Linux, "firefox", format!("{} — Mozilla Firefox", "Seite - ".repeat(200)));
    let flatpak = WindowInfo::new(Os::Linux, "com.github.IsmaelMartinez.teams_for_linux", "Chat | Microsoft Teams");
    let unknown = WindowInfo::new(Os::Windows, "KommunalPost.exe", "Posteingang (12) | Amt 32");
    let by_entry = WindowInfo::new(Os::Linux, "Postkutsche", "Vorgang 12")
        .with_facts(AppFacts::from_columns("Network;Email;", "de.example.Postkutsche.desktop|Postkutsche|postkutsche"));
    let look_alike = WindowInfo::new(Os::Linux, "org.gnome.Nautilus", "Posteingang");
    g.bench_function("browser-allowed", |b| b.iter(|| builtin.classify(black_box(&browser))));
    g.bench_function("flatpak-id-by-word", |b| b.iter(|| builtin.classify(black_box(&flatpak))));
    g.bench_function("unknown-app-mailbox", |b| b.iter(|| builtin.classify(black_box(&unknown))));
    g.bench_function("desktop-entry-category", |b| b.iter(|| builtin.classify(black_box(&by_entry))));
    g.bench_function("file-manager-look-alike", |b| b.iter(|| builtin.classify(black_box(&look_alike))));
    g.bench_function("app-allowed", |b| b.iter(|| builtin.classify(black_box(&app))));
    g.bench_function("browser-1600-char-title", |b| b.iter(|| builtin.classify(black_box(&long))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
