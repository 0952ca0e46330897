//! The seeded differential suite: one seed draws a scenario (`scenario`), which is replayed on
//! two fresh control planes (`side`): **(a)** KubeStellar's controller-manager with both of its
//! controllers, **(b)** KubeStellar's controller-manager with `--controllers=binding` beside
//! `status-router run`. When both have settled, every workload object's `.status` and
//! KubeStellar's labels, every CombinedStatus and every Binding's `StatusCollectorsAvailable`
//! condition are compared (`compare`, `combined`). Every difference must be explained by a row of
//! `docs/kubestellar-differences.md`, through the rule attached to that row (`differences`);
//! any other difference fails the run, printing the object, both values and the seed.
//!
//! `DIFF_SEED` and `DIFF_OBJECTS` choose the run (the defaults are the short form that `cargo
//! xtask test` runs); `cargo xtask differential --seed N --objects N` runs a long one.
//! `DIFF_POLICY` names a policy component that status-router runs instead of the embedded
//! default: a mutant (`mutants/`), to see the suite fail.

mod combined;
mod compare;
mod differences;
mod scenario;
mod shared_rows;
mod side;

use std::time::Instant;

use integration_tests::async_test;
use scenario::Settings;
use side::{Judge, Side};

#[async_test(worker_threads = 4)]
async fn kubestellar_and_status_router_agree_but_for_the_documented_differences() {
    integration_tests::init_logs();
    let _alone = integration_tests::alone().await;
    let settings = Settings::from_env();
    let scenario = scenario::draw(settings);
    let last = scenario.last_state();
    println!(
        "differential: seed {} objects {} policies {} events {}",
        settings.seed,
        scenario.objects.len(),
        scenario.initial.policies.len(),
        scenario.timeline.len()
    );
    let rows = differences::table();

    let mut shown = Vec::new();
    let mut untouched = Default::default();
    for judge in [Judge::KubeStellar, Judge::StatusRouter] {
        let t0 = Instant::now();
        let mut side = Side::start(judge, &scenario).await;
        side.create(&scenario).await;
        if judge == Judge::KubeStellar {
            // Before any WorkStatus has a status: the objects as the API server created them.
            untouched = side.observe(&scenario).await.objects;
        }
        side.report(&scenario).await;
        let mut state = scenario.initial.clone();
        for event in &scenario.timeline {
            let before = state.clone();
            state.apply(event);
            side.play(&scenario, &before, event, &state).await;
        }
        let end = side.settle(&scenario, &last).await;
        println!(
            "differential: {judge:?} side settled in {:.1?}",
            t0.elapsed()
        );
        shown.push(end);
    }
    let kubestellar = &shown[0];
    let status_router = &shown[1];
    let report = compare::compare(
        &scenario,
        &last,
        kubestellar,
        status_router,
        &untouched,
        &rows,
    );
    println!("{}", report.render(settings));
    // A comparison of nothing proves nothing: the scenario must have made both sides return.
    assert!(
        report.returned.0 > 0 && report.returned.1 > 0,
        "no status was returned on one side (KubeStellar {}, status-router {}): the scenario \
         compared nothing",
        report.returned.0,
        report.returned.1
    );
    assert!(
        report.unexplained.is_empty(),
        "{} difference(s) no row of docs/kubestellar-differences.md explains (seed {}, {} \
         objects): see the report above",
        report.unexplained.len(),
        settings.seed,
        settings.objects
    );
}
