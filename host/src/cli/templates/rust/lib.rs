//! The {{name}} policy: KubeStellar's routing table; numbers aggregate by
//! their minimum, other values stay where every WEC agrees.

wit_bindgen::generate!({ path: "wit", world: "status-policy" });

use std::collections::BTreeSet;

use exports::kubestellar::status_policy::policy::{
    Decision, Guest, ReportedStatus, Request, WorkloadRef,
};
use serde_json::{Map, Value};

struct Policy;

impl Guest for Policy {
    fn decide(req: Request) -> Decision {
        let s = req.want_singleton_reported_state;
        let m = req.want_multi_wec_reported_state;
        let set = |l: Vec<String>| l.into_iter().collect::<BTreeSet<_>>();
        match (s, m) {
            (false, false) => Decision::None,
            (true, false) => Decision::Singleton(set(req.singleton_wecs).into_iter().collect()),
            _ => {
                let mut wecs = set(req.multi_wec_wecs);
                if s {
                    wecs.extend(req.singleton_wecs);
                }
                let wecs: Vec<String> = wecs.into_iter().collect();
                if wecs.len() == 1 {
                    Decision::Singleton(wecs)
                } else {
                    Decision::MultiWec(wecs)
                }
            }
        }
    }

    fn aggregate(_object: WorkloadRef, reported: Vec<ReportedStatus>) -> Result<String, String> {
        let mut statuses = Vec::new();
        for r in reported {
            match serde_json::from_str::<Value>(&r.status) {
                Ok(Value::Object(status)) => statuses.push(status),
                _ => return Err(format!("WEC {} reported a status that is not a JSON object", r.wec)),
            }
        }
        let keys: BTreeSet<&String> = statuses.iter().flat_map(|s| s.keys()).collect();
        let mut out = Map::new();
        for key in keys {
            let values: Vec<Option<&Value>> = statuses.iter().map(|s| s.get(key)).collect();
            if values.iter().flatten().all(|v| v.is_i64()) {
                let min = values.iter().map(|v| v.and_then(Value::as_i64).unwrap_or(0)).min();
                out.insert(key.clone(), min.unwrap_or(0).into());
            } else if values.iter().all(|v| *v == values[0]) {
                if let Some(v) = values[0] {
                    out.insert(key.clone(), v.clone());
                }
            }
        }
        Ok(Value::Object(out).to_string())
    }
}

export!(Policy);
