//! What leader election tells the writers: whether this replica may write
//! now. `ops::leader` sends it; the controller's workers follow it.

/// What this replica may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Watches run and the index is kept; nothing is written.
    Standby,
    /// Holds the Lease: the workers write.
    Leading,
    /// Released or lost: never leads again in this process.
    Stopped(String),
}
