//! Comparing what the two sides show, object by object and field by field (`.status` and
//! KubeStellar's three labels; CombinedStatuses and conditions in `combined`), and classifying every difference by the rules of
//! `differences`. What the rules may look at ([`Facts`]) is computed from the scenario's final
//! inputs, the same routing table as KUBESTELLAR.md's, written out again here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;
use status_router::kubestellar::{
    EXECUTING_COUNT_LABEL, MULTI_WEC_STATUS_LABEL, SINGLETON_STATUS_LABEL,
};

use super::differences::Row;
use super::scenario::{Kind, Scenario, Settings, State, wec_name};
use super::side::{Shown, Snapshot};

/// What the rules may know of one object at the end.
#[derive(Debug)]
pub struct Facts {
    pub kind: Kind,
    pub singleton: bool,
    /// The qualified WEC sets of both flags.
    pub s: BTreeSet<usize>,
    pub m: BTreeSet<usize>,
    pub decision: Decision,
    /// Per WEC counted by the decision: the statuses of its WorkStatuses (one per Binding).
    pub reports: BTreeMap<usize, Vec<Option<Value>>>,
    /// The status the object showed on KubeStellar's side before anything returned one (the
    /// API server's defaults for the kind): what a write that never succeeded leaves.
    pub untouched: Option<Value>,
    /// The status each side shows at the end: KubeStellar's, then status-router's.
    pub shown: [Option<Value>; 2],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Singleton,
    Multi,
    None,
}

impl Facts {
    pub fn of(scenario: &Scenario, state: &State, o: usize) -> Facts {
        let object = &scenario.objects[o];
        let (mut singleton, mut multi) = (false, false);
        let (mut s, mut m) = (BTreeSet::new(), BTreeSet::new());
        for (p, policy) in state.policies.iter().enumerate() {
            let Some(policy) = policy else { continue };
            if policy.group != object.group {
                continue;
            }
            let wecs = state.destinations(p);
            if policy.singleton {
                singleton = true;
                s.extend(wecs.iter().copied());
            }
            if policy.multi {
                multi = true;
                m.extend(wecs.iter().copied());
            }
        }
        let (decision, counted): (Decision, BTreeSet<usize>) = match (singleton, multi) {
            (true, true) => {
                let u: BTreeSet<usize> = s.union(&m).copied().collect();
                let d = if u.len() == 1 {
                    Decision::Singleton
                } else {
                    Decision::Multi
                };
                (d, u)
            }
            (true, false) => (Decision::Singleton, s.clone()),
            (false, true) => {
                let d = if m.len() == 1 {
                    Decision::Singleton
                } else {
                    Decision::Multi
                };
                (d, m.clone())
            }
            (false, false) => (Decision::None, BTreeSet::new()),
        };
        let mut reports: BTreeMap<usize, Vec<Option<Value>>> = BTreeMap::new();
        for (_, ro, w) in state.delivered(&scenario.objects) {
            if ro == o && counted.contains(&w) {
                let status = state.statuses.get(&(o, w)).cloned().flatten();
                reports.entry(w).or_default().push(status);
            }
        }
        Facts {
            kind: object.kind,
            singleton,
            s,
            m,
            decision,
            reports,
            untouched: None,
            shown: [None, None],
        }
    }

    /// The statuses reported in the counted WECs (WorkStatuses with a status).
    pub fn reported(&self) -> Vec<&Value> {
        self.reports.values().flatten().flatten().collect()
    }
}

/// One field that differs.
#[derive(Debug)]
pub struct Difference {
    pub object: String,
    /// `status` or a label key.
    pub field: String,
    pub kubestellar: Option<Value>,
    pub status_router: Option<Value>,
}

pub struct Report {
    pub compared: usize,
    /// CombinedStatuses compared (on either side).
    pub combined_compared: usize,
    /// Objects that end with a status returned: (on KubeStellar's side, on ours).
    pub returned: (usize, usize),
    /// Objects whose decision is singleton, multi-WEC, none.
    pub decisions: [usize; 3],
    /// Row id -> differences it explains.
    pub explained: BTreeMap<&'static str, Vec<Difference>>,
    pub unexplained: Vec<(Difference, String)>,
    pub rows: Vec<Row>,
}

const LABELS: [&str; 3] = [
    SINGLETON_STATUS_LABEL,
    MULTI_WEC_STATUS_LABEL,
    EXECUTING_COUNT_LABEL,
];

/// `{}` and no status at all mean the same to a user: nothing returned.
fn normalized(status: &Option<Value>) -> Option<Value> {
    match status {
        Some(Value::Object(map)) if map.is_empty() => None,
        other => other.clone(),
    }
}

pub fn compare(
    scenario: &Scenario,
    last: &State,
    kubestellar: &Snapshot,
    status_router: &Snapshot,
    untouched: &BTreeMap<String, Shown>,
    rows: &[Row],
) -> Report {
    let mut report = Report {
        compared: 0,
        combined_compared: 0,
        returned: (0, 0),
        decisions: [0; 3],
        explained: BTreeMap::new(),
        unexplained: Vec::new(),
        rows: rows.to_vec(),
    };
    for (o, object) in scenario.objects.iter().enumerate() {
        let (Some(ks), Some(sr)) = (
            kubestellar.objects.get(&object.name),
            status_router.objects.get(&object.name),
        ) else {
            panic!("{} was not observed on both sides", object.name);
        };
        report.compared += 1;
        let mut facts = Facts::of(scenario, last, o);
        facts.untouched = untouched.get(&object.name).and_then(|s| s.status.clone());
        facts.shown = [ks.status.clone(), sr.status.clone()];
        report.decisions[match facts.decision {
            Decision::Singleton => 0,
            Decision::Multi => 1,
            Decision::None => 2,
        }] += 1;
        report.returned.0 += usize::from(normalized(&ks.status).is_some());
        report.returned.1 += usize::from(normalized(&sr.status).is_some());
        let mut differences = Vec::new();
        if normalized(&ks.status) != normalized(&sr.status) {
            differences.push(Difference {
                object: object.name.clone(),
                field: "status".into(),
                kubestellar: ks.status.clone(),
                status_router: sr.status.clone(),
            });
        }
        for label in LABELS {
            let (a, b) = (ks.labels.get(label), sr.labels.get(label));
            if a != b {
                differences.push(Difference {
                    object: object.name.clone(),
                    field: label.into(),
                    kubestellar: a.map(|v| Value::String(v.clone())),
                    status_router: b.map(|v| Value::String(v.clone())),
                });
            }
        }
        let everything = differences
            .iter()
            .map(|d| d.field.clone())
            .collect::<Vec<_>>();
        for difference in differences {
            match super::differences::classify(&facts, &difference, &everything) {
                Some(id) => report.explained.entry(id).or_default().push(difference),
                None => report.unexplained.push((difference, format!("{facts:?}"))),
            }
        }
    }
    let (combined, differences) =
        super::combined::differences(scenario, last, kubestellar, status_router);
    report.combined_compared = combined;
    for (difference, facts) in differences {
        match super::differences::classify_combined(facts.as_ref(), &difference) {
            Some(id) => report.explained.entry(id).or_default().push(difference),
            None => report.unexplained.push((difference, format!("{facts:?}"))),
        }
    }
    report
}

impl Report {
    /// The report as Markdown: objects compared, the count per table row, every unexplained
    /// difference in full.
    pub fn render(&self, settings: Settings) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Differential run: seed {}, {} objects and {} CombinedStatuses compared\n",
            settings.seed, self.compared, self.combined_compared
        );
        let [singleton, multi, none] = self.decisions;
        let _ = writeln!(
            out,
            "Decisions at the end: {singleton} singleton, {multi} multi-WEC, {none} none. \
             Objects with a status returned: {} by KubeStellar, {} by status-router.\n",
            self.returned.0, self.returned.1
        );
        let _ = writeln!(out, "| row | differences |\n|---|---:|");
        for row in &self.rows {
            let n = self.explained.get(row.id.as_str()).map_or(0, Vec::len);
            let _ = writeln!(out, "| `{}` | {n} |", row.id);
        }
        let _ = writeln!(out, "| **unexplained** | {} |", self.unexplained.len());
        for (d, facts) in &self.unexplained {
            let _ = writeln!(
                out,
                "\nUNEXPLAINED (seed {}): {} `{}`\n  KubeStellar:   {}\n  status-router: {}\n  facts: {facts}",
                settings.seed,
                d.object,
                d.field,
                show(&d.kubestellar),
                show(&d.status_router),
            );
        }
        let wecs: Vec<String> = (0..super::scenario::WECS).map(wec_name).collect();
        let _ = writeln!(out, "\n(WECs {wecs:?}, by index in the facts.)");
        out
    }
}

fn show(value: &Option<Value>) -> String {
    value.as_ref().map_or("(none)".into(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::scenario::{SHORT, draw};
    use super::*;

    /// The short form `cargo xtask test` runs must end with objects of every decision, and
    /// some multi-WEC ones with two or more statuses to aggregate: else it compares little.
    #[test]
    fn the_short_form_ends_with_every_decision_and_an_aggregate() {
        let scenario = draw(SHORT);
        let last = scenario.last_state();
        let facts: Vec<Facts> = (0..scenario.objects.len())
            .map(|o| Facts::of(&scenario, &last, o))
            .collect();
        for decision in [Decision::Singleton, Decision::Multi, Decision::None] {
            assert!(
                facts.iter().any(|f| f.decision == decision),
                "no {decision:?} decision in the short form"
            );
        }
        assert!(
            facts
                .iter()
                .any(|f| f.decision == Decision::Multi && f.reported().len() >= 2),
            "no multi-WEC aggregate in the short form"
        );
    }
}
