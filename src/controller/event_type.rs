//! Which condition transitions deserve a `Warning` Event.
//!
//! A resource that waits for its PsaConnection (or ContractService) to be reconciled is not
//! broken: a first `kubectl apply -f config/samples/` creates the mappings milliseconds after
//! the connection and the service, before the connection has authenticated or the service
//! exists in the PSA, and a burst of Warnings on a healthy demo sends the reader looking for a
//! fault that is not there. Such transitions are `Normal`; the condition
//! (Ready=False with the reason) still shows the wait in `kubectl get`, and a wait that lasts
//! is visible there and in the connection's own Warnings.

/// Reasons that mean "waiting for the connection (or the ContractService) to be reconciled",
/// not "something is wrong here".
const WAITING_FOR_CONNECTION: [&str; 3] = [
    "ConnectionNotFound",
    "ConnectionNotReady",
    "ServiceNotReady",
];

/// Whether a condition transition to `healthy` (status True) with `reason` is a Warning Event.
pub fn is_warning(healthy: bool, reason: &str) -> bool {
    !healthy && !WAITING_FOR_CONNECTION.contains(&reason)
}

#[cfg(test)]
mod tests {
    use super::is_warning;

    #[test]
    fn only_real_faults_are_warnings() {
        let table = [
            (true, "Ready", false),
            (false, "ConnectionNotFound", false),
            (false, "ConnectionNotReady", false),
            (false, "ServiceNotReady", false),
            (false, "ServiceNotFound", true),
            (false, "CompanyNotFound", true),
            (false, "DuplicateOrganization", true),
            (false, "PsaUnavailable", true),
        ];
        for (healthy, reason, want) in table {
            assert_eq!(is_warning(healthy, reason), want, "{healthy} {reason}");
        }
    }
}
