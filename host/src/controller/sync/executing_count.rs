//! The `kubestellar.io/executing-count` label, which KubeStellar's API
//! promises (the doc comment of `wantSingletonReportedState`) and nobody had
//! built: while singleton status return is requested for an object, the
//! decimal size of its qualified WEC set; absent otherwise.
//!
//! The qualified WEC set is the union of the destinations of every Binding
//! whose clause for the object sets either flag, which the index already
//! keeps per flag. So a user sees on the object why a singleton status is
//! missing: `executing-count: "2"` next to a cleared status says that two
//! WECs qualify where a singleton copy needs exactly one.
//!
//! The label rides on every write of the object (see `wds`): it goes on or
//! changes before the status is written and comes off after it, like our
//! other labels, and it is never put on an object that was never ours (the
//! `none` path leaves those alone), nor on a Namespace or a CRD (never
//! written at all).

use crate::controller::index::Routing;

/// The label's value for an object with these routing facts: the number of
/// qualified WECs while singleton status return is requested, else `None`
/// (the label must not exist).
pub fn executing_count(routing: &Routing) -> Option<usize> {
    routing.want_singleton.then(|| {
        routing
            .singleton_wecs
            .union(&routing.multi_wec_wecs)
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(singleton: Option<&[&str]>, multi: Option<&[&str]>) -> Routing {
        let set = |w: Option<&[&str]>| {
            w.unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        Routing {
            want_singleton: singleton.is_some(),
            want_multi_wec: multi.is_some(),
            singleton_wecs: set(singleton),
            multi_wec_wecs: set(multi),
            version: Some("v1".into()),
        }
    }

    #[test]
    fn counts_the_union_of_both_flags_while_singleton_is_requested() {
        assert_eq!(executing_count(&routing(Some(&["a", "b"]), None)), Some(2));
        assert_eq!(
            executing_count(&routing(Some(&["a"]), Some(&["a", "c"]))),
            Some(2)
        );
        assert_eq!(executing_count(&routing(Some(&[]), None)), Some(0));
    }

    #[test]
    fn absent_without_the_singleton_flag() {
        assert_eq!(executing_count(&routing(None, Some(&["a", "b"]))), None);
        assert_eq!(executing_count(&routing(None, None)), None);
    }
}
