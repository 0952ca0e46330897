//! CombinedStatuses from StatusCollectors on a real control plane with
//! KubeStellar's own CRDs: upstream's five end-to-end expectations, the API
//! text where upstream departs from it (limit, null and failing filters,
//! deleted WorkStatuses, invalid and missing collectors), re-evaluation when
//! an input changes, the cost limit, and a WDS that stops answering.
//! KubeStellar's CRDs come from its Go module (see `xtask::kubestellar_crd`).

mod combined;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use status_router::kubestellar::{
    API_GROUP_LABEL, BINDING_POLICY_LABEL, Binding, NAME_LABEL, NAMESPACE_LABEL, RESOURCE_LABEL,
    StatusCollector, WorkStatus,
};
use status_router::runtime::api::REQUEST_TIMEOUT;
use testenv::Server;

use combined::*;
use integration_tests::*;

fn number(n: &str) -> serde_json::Value {
    json!({"type": "Number", "float": n})
}

/// Upstream's expectations (two WECs, one Deployment with 1 replica): the
/// full status per WEC, the SUM of availableReplicas, the filtered WEC list,
/// two collectors on one policy, and aggregation over zero WECs.
#[async_test]
async fn upstreams_five_expectations_with_published_crds() {
    let w = World::new().await;
    let [c1, c2] = [w.wecs[0].as_str(), w.wecs[1].as_str()];
    w.collector(
        "full",
        json!({"select": [{"name": "wecName", "def": "inventory.name"},
                          {"name": "status", "def": "returned.status"}], "limit": 20}),
    )
    .await;
    w.collector(
        "sum",
        json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                   "subject": "returned.status.availableReplicas"}], "limit": 20}),
    )
    .await;
    w.collector(
        "filtered",
        json!({"filter": "obj.spec.replicas == returned.status.availableReplicas",
               "select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}),
    )
    .await;
    w.collector(
        "zero",
        json!({"filter": "false", "combinedFields": [
            {"name": "count", "type": "COUNT"},
            {"name": "max", "type": "MAX", "subject": "2"},
            {"name": "min", "type": "MIN", "subject": "2"},
            {"name": "sum", "type": "SUM", "subject": "2"},
            {"name": "avg", "type": "AVG", "subject": "2"}], "limit": 20}),
    )
    .await;
    let two = w.policy("two", &[c1, c2], &["sum", "full"]).await;
    let other = w.policy("other", &[c1, c2], &["zero", "filtered"]).await;
    w.report_both("two").await;

    let status = json!({"replicas": 1, "availableReplicas": 1});
    let cs = w
        .wait_combined(&two, "two results: full and sum", |cs| {
            rows_are(cs, "sum", &json!([{"columns": [number("2")]}]))?;
            let full = result(cs, "full").ok_or("no full")?;
            if full.rows.len() != 2 {
                return Err(format!("full: {full:?}"));
            }
            Ok(())
        })
        .await;
    let names: Vec<&str> = cs.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["full", "sum"], "two collectors, sorted by name");
    let full = result(&cs, "full").unwrap();
    assert_eq!(full.column_names, ["wecName", "status"]);
    let mut want = vec![
        json!({"columns": [{"type": "String", "string": c1}, {"type": "Object", "object": status}]}),
        json!({"columns": [{"type": "String", "string": c2}, {"type": "Object", "object": status}]}),
    ];
    let mut got: Vec<serde_json::Value> = rows(full).as_array().unwrap().clone();
    got.sort_by_key(|r| r.to_string());
    want.sort_by_key(|r| r.to_string());
    assert_eq!(got, want);

    // Name, namespace, the five labels and the owner, as KubeStellar writes them.
    let uid = w.web_uid().await;
    assert_eq!(
        cs.metadata.name.as_deref(),
        Some(format!("{uid}.{two}").as_str())
    );
    assert_eq!(cs.metadata.namespace.as_deref(), Some(w.ns.as_str()));
    let labels = cs.metadata.labels.clone().unwrap();
    assert_eq!(labels.len(), 5, "{labels:?}");
    assert_eq!(labels[API_GROUP_LABEL], "apps");
    assert_eq!(labels[RESOURCE_LABEL], "deployments");
    assert_eq!(labels[NAMESPACE_LABEL], w.ns);
    assert_eq!(labels[NAME_LABEL], "web");
    assert_eq!(labels[BINDING_POLICY_LABEL], "two");
    let owner = &cs.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Deployment", "web", uid.as_str())
    );

    let cs = w
        .wait_combined(&other, "the filtered list and the zero aggregates", |cs| {
            let filtered = result(cs, "filtered").ok_or("no filtered")?;
            if first_strings(filtered) != [c1, c2] {
                return Err(format!("filtered: {filtered:?}"));
            }
            rows_are(
                cs,
                "zero",
                &json!([{"columns": [number("0"), number("-Inf"), number("+Inf"), number("0"), number("NaN")]}]),
            )
        })
        .await;
    assert!(result(&cs, "filtered").unwrap().row_errors.is_empty());

    // The object is an input: 2 replicas wanted, 1 available in each WEC.
    Api::<Deployment>::namespaced(w.wds.clone(), &w.ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale the Deployment");
    w.wait_combined(&other, "no WEC passes the filter any more", |cs| {
        let filtered = result(cs, "filtered").ok_or("no filtered")?;
        if filtered.rows.is_empty() {
            Ok(())
        } else {
            Err(format!("filtered: {filtered:?}"))
        }
    })
    .await;
    w.controller.assert_no_errors();
    w.controller.stop().await;
}

/// `limit` is enforced, a null filter excludes the row and a failing one also
/// records the error, a deleted WorkStatus or a WEC leaving the destinations
/// removes its row, an invalid collector gets `status.errors` and no result,
/// and the Binding says which collectors are missing.
#[async_test]
async fn the_api_text_where_upstream_departs_from_it_with_published_crds() {
    let w = World::new().await;
    let [c1, c2] = [w.wecs[0].as_str(), w.wecs[1].as_str()];
    w.collector(
        "limited",
        json!({"select": [{"name": "wec", "def": "inventory.name"}], "limit": 1}),
    )
    .await;
    w.collector(
        "wecs",
        json!({"select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}),
    )
    .await;
    w.collector(
        "ready",
        json!({"filter": "returned.status.mode == 'null' ? null : returned.status.ready",
               "select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}),
    )
    .await;
    w.collector(
        "broken",
        json!({"filter": "obj.spec.replicas ==", "select": [{"name": "a", "def": "1"}], "limit": 20}),
    )
    .await;
    let bp = w
        .policy(
            "api",
            &[c1, c2],
            &["limited", "wecs", "ready", "broken", "ghost"],
        )
        .await;
    // cluster 1: the filter gives null (false, no error); cluster 2: it reads
    // a `ready` that is not there (an error: excluded and recorded).
    w.report(c1, "api", &json!({"mode": "null", "replicas": 1}))
        .await;
    w.report(c2, "api", &json!({"mode": "error", "replicas": 1}))
        .await;

    let cs = w
        .wait_combined(&bp, "limit, filters, no broken result", |cs| {
            let wecs = result(cs, "wecs").ok_or("no wecs")?;
            if first_strings(wecs) != [c1, c2] {
                return Err(format!("wecs: {wecs:?}"));
            }
            Ok(())
        })
        .await;
    assert_eq!(result(&cs, "limited").unwrap().rows.len(), 1, "limit: 1");
    let ready = result(&cs, "ready").unwrap();
    assert!(ready.rows.is_empty(), "{ready:?}");
    assert_eq!(ready.row_errors.len(), 1, "{ready:?}");
    assert_eq!(ready.row_errors[0].wec.cluster_id, c2);
    assert_eq!(ready.row_errors[0].column_name, "");
    let names: Vec<&str> = cs.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["limited", "ready", "wecs"],
        "no result for broken or ghost"
    );

    // The invalid collector's status says why, for its generation.
    let collectors: Api<StatusCollector> = Api::all(w.wds.clone());
    let broken = wait_for("status.errors on broken", TIMEOUT, || async {
        let sc = collectors.get("broken").await.map_err(|e| e.to_string())?;
        match &sc.status {
            Some(s) if !s.errors.is_empty() => Ok(sc),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = broken.status.unwrap();
    assert_eq!(Some(status.observed_generation), broken.metadata.generation);
    assert!(status.errors[0].contains("filter"), "{:?}", status.errors);
    let valid = collectors.get("wecs").await.unwrap();
    wait_for(
        "observedGeneration on a valid collector",
        TIMEOUT,
        || async {
            let sc = collectors.get("wecs").await.map_err(|e| e.to_string())?;
            match &sc.status {
                Some(s)
                    if s.errors.is_empty()
                        && Some(s.observed_generation) == valid.metadata.generation =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // The Binding names the missing and the invalid collector.
    let bindings: Api<Binding> = Api::all(w.wds.clone());
    wait_for("StatusCollectorsAvailable False", TIMEOUT, || async {
        let b = bindings.get("api").await.map_err(|e| e.to_string())?;
        let conditions = b.status.map(|s| s.conditions).unwrap_or_default();
        match conditions
            .iter()
            .find(|c| c.type_ == "StatusCollectorsAvailable")
        {
            Some(c)
                if c.status == "False"
                    && c.reason == "ReconcileError"
                    && c.message.contains("broken")
                    && c.message.contains("ghost") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Both writes were counted by their own reconcilers.
    let text = w.controller.metrics().render();
    for controller in ["statuscollector-status", "binding-condition"] {
        let line = format!(
            "controller_runtime_reconcile_total{{controller=\"{controller}\",result=\"success\"}} "
        );
        let count: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {line} in {text}"))
            .parse()
            .expect("a count");
        assert!(count > 0, "{controller} reconciled nothing:\n{text}");
        assert!(
            text.contains(&format!("workqueue_adds_total{{name=\"{controller}\"}} ")),
            "no queue metrics for {controller}"
        );
    }

    // A deleted WorkStatus removes its WEC's row.
    Api::<WorkStatus>::namespaced(w.its.clone(), c2)
        .delete(&w.report_name(), &DeleteParams::default())
        .await
        .expect("delete cluster 2's WorkStatus");
    w.wait_combined(&bp, "cluster 2's row gone", |cs| {
        let wecs = result(cs, "wecs").ok_or("no wecs")?;
        let ready = result(cs, "ready").ok_or("no ready")?;
        if first_strings(wecs) == [c1] && ready.row_errors.is_empty() {
            Ok(())
        } else {
            Err(format!("wecs: {wecs:?}, ready: {ready:?}"))
        }
    })
    .await;

    // A WEC that leaves the destinations takes its row along.
    w.report(c2, "api", &json!({"mode": "error", "replicas": 1}))
        .await;
    w.wait_combined(&bp, "cluster 2 back", |cs| {
        let wecs = result(cs, "wecs").ok_or("no wecs")?;
        (first_strings(wecs) == [c1, c2])
            .then_some(())
            .ok_or(format!("{wecs:?}"))
    })
    .await;
    w.bind("api", &[c2], &["wecs"]).await;
    w.wait_combined(&bp, "only cluster 2, only wecs", |cs| {
        let wecs = result(cs, "wecs").ok_or("no wecs")?;
        (first_strings(wecs) == [c2] && cs.results.len() == 1)
            .then_some(())
            .ok_or(format!("{:?}", cs.results))
    })
    .await;

    // No collector applies any more: the CombinedStatus goes.
    w.bind("api", &[c1, c2], &[]).await;
    let name = format!("{}.{bp}", w.web_uid().await);
    let api: Api<status_router::kubestellar::CombinedStatus> =
        Api::namespaced(w.wds.clone(), &w.ns);
    wait_for("the CombinedStatus deleted", TIMEOUT, || async {
        match api.get_opt(&name).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    w.controller.assert_no_errors();
    w.controller.stop().await;
}

/// A collector whose expression would grow without bound is refused by the
/// cost limit (the error in `rowErrors`), the other collectors of the policy
/// are served, and the controller keeps following changes.
#[async_test]
async fn the_cost_limit_stops_a_hostile_collector_with_published_crds() {
    let w = World::new().await;
    let [c1, c2] = [w.wecs[0].as_str(), w.wecs[1].as_str()];
    let ten = "[0,1,2,3,4,5,6,7,8,9]";
    let mut hostile = "returned.status".to_string();
    for var in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
        hostile = format!("{ten}.map({var}, {hostile})");
    }
    w.collector(
        "hostile",
        json!({"select": [{"name": "boom", "def": hostile}], "limit": 20}),
    )
    .await;
    w.collector(
        "sum",
        json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                   "subject": "returned.status.availableReplicas"}], "limit": 20}),
    )
    .await;
    let bp = w.policy("cost", &[c1, c2], &["hostile", "sum"]).await;
    w.report_both("cost").await;
    let cs = w
        .wait_combined(&bp, "the hostile collector refused, sum served", |cs| {
            let hostile = result(cs, "hostile").ok_or("no hostile")?;
            if hostile.row_errors.len() != 2 {
                return Err(format!("hostile: {hostile:?}"));
            }
            rows_are(cs, "sum", &json!([{"columns": [number("2")]}]))
        })
        .await;
    let hostile = result(&cs, "hostile").unwrap();
    assert!(
        hostile.row_errors[0].error.contains("exceeds the limit"),
        "{:?}",
        hostile.row_errors
    );
    // Still serving: a new report is followed.
    set_report_status(
        &w.its,
        c2,
        &w.report_name(),
        Some(&json!({"replicas": 1, "availableReplicas": 5})),
    )
    .await;
    w.wait_combined(&bp, "the new sum", |cs| {
        rows_are(cs, "sum", &json!([{"columns": [number("6")]}]))
    })
    .await;
    w.controller.assert_no_errors();
    w.controller.stop().await;
}

/// A WDS that stops answering (SIGSTOP) while a CombinedStatus reconcile
/// runs holds its worker no longer than the request timeout: every call of
/// the reconcile is bounded, the reconcile fails as transient and is retried
/// soon. Once the WDS answers again, the CombinedStatus follows the report
/// that arrived meanwhile.
#[async_test]
async fn a_stopped_wds_holds_no_worker_past_the_request_timeout() {
    let w = World::new().await;
    let [c1, c2] = [w.wecs[0].as_str(), w.wecs[1].as_str()];
    w.collector(
        "sum",
        json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                   "subject": "returned.status.availableReplicas"}], "limit": 20}),
    )
    .await;
    let uid = w.policy("p", &[c1, c2], &["sum"]).await;
    w.report_both("p").await;
    w.wait_combined(&uid, "the sum over both WECs", |cs| {
        rows_are(cs, "sum", &json!([{"columns": [number("2")]}]))
    })
    .await;

    let metrics = w.controller.metrics();
    let (started, failed) = (metrics.reconciles(), metrics.reconcile_errors());
    w._cp
        .pause(Server::Wds)
        .expect("SIGSTOP the WDS API server");
    // A report arrives in the ITS (which still answers): the object is
    // reconciled, and its CombinedStatus reconcile reads the object from the
    // WDS, which answers nothing.
    set_report_status(
        &w.its,
        c1,
        &w.report_name(),
        Some(&json!({"replicas": 1, "availableReplicas": 0})),
    )
    .await;
    let began = wait_for("a reconcile starts", TIMEOUT, || async {
        if metrics.reconciles() > started {
            Ok(Instant::now())
        } else {
            Err("no reconcile yet".to_string())
        }
    })
    .await;
    let bound = REQUEST_TIMEOUT + Duration::from_secs(5);
    wait_for("the reconcile gives its worker back", bound, || async {
        if metrics.reconcile_errors() > failed {
            Ok(())
        } else {
            Err(format!(
                "no reconcile failed yet; {} worker(s) busy",
                metrics.active_workers()
            ))
        }
    })
    .await;
    let held = began.elapsed();
    println!("a worker was held {held:?} by the stopped WDS (request timeout {REQUEST_TIMEOUT:?})");
    assert!(held < bound, "held {held:?}");

    w._cp
        .resume(Server::Wds)
        .expect("SIGCONT the WDS API server");
    w.wait_combined(&uid, "the sum follows once the WDS is back", |cs| {
        rows_are(cs, "sum", &json!([{"columns": [number("1")]}]))
    })
    .await;
}
