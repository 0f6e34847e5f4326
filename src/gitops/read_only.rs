//! A `Psa` that only reads: `plan` and `import` talk to the PSA through it, so a bug in either
//! cannot create, change or delete anything. It also counts the calls by method, which `plan`
//! reports. Every method is forwarded, those with a default in the traits too: a default
//! would hide the client's own answer (`psa::forward` lists them, and says which write).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::psa::forward::{forward_psa, Around, Call};
use crate::psa::*;

pub struct ReadOnlyPsa {
    inner: Arc<dyn Psa>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl ReadOnlyPsa {
    pub fn new(inner: Arc<dyn Psa>) -> Self {
        ReadOnlyPsa {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads made so far, by method.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads are counted and made; writes are refused without reaching the PSA.
impl Around for ReadOnlyPsa {
    async fn read<T: Send>(&self, method: &'static str, call: Call<'_, T>) -> PsaResult<T> {
        *self.lock().entry(method).or_default() += 1;
        call.await
    }

    async fn write<T: Send>(&self, method: &'static str, _call: Call<'_, T>) -> PsaResult<T> {
        Err(PsaError::Permanent {
            status: None,
            message: format!("{method} refused: this command only reads from the PSA"),
        })
    }
}

forward_psa!(ReadOnlyPsa => inner);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::connectwise::{ConnectWiseClient, ConnectWiseConfig};
    use crate::secret::SecretString;

    /// Every write of the three traits is refused by name before it reaches the client (which
    /// here has nothing to talk to: a write that got through would fail with a transport error
    /// instead), and none is counted as a read.
    #[tokio::test]
    async fn every_write_is_refused_before_it_reaches_the_client() {
        let client = ConnectWiseClient::new(ConnectWiseConfig::new(
            "http://127.0.0.1:9",
            "demo",
            "00000000-0000-0000-0000-000000000001",
            SecretString::new("pub"),
            SecretString::new("priv"),
        ))
        .unwrap();
        let psa = ReadOnlyPsa::new(Arc::new(client));
        let id: PsaId = "1".into();
        let spec = CatalogServiceSpec {
            name: "Backup".into(),
            description: String::new(),
            cost: 0,
            price: 0,
        };
        let values = LineValues {
            quantity: 1,
            cost: 0,
            price: 0,
        };
        let line = ContractLine {
            id: id.clone(),
            contract_id: id.clone(),
            service_id: id.clone(),
            quantity: 1,
            cost: 0,
            price: 0,
        };
        let writes = [
            (
                "create_ticket",
                psa.create_ticket(&NewTicket::default()).await.err(),
            ),
            ("add_note", psa.add_note(&id, "note").await.err()),
            (
                "close_ticket",
                psa.close_ticket(CloseTicket::new(&id)).await.err(),
            ),
            (
                "reopen_ticket",
                psa.reopen_ticket(ReopenTicket {
                    ticket_id: &id,
                    status_id: &id,
                    note: "note",
                })
                .await
                .err(),
            ),
            (
                "create_catalog_service",
                psa.create_catalog_service(&spec).await.err(),
            ),
            (
                "update_catalog_service",
                psa.update_catalog_service(&id, &spec).await.err(),
            ),
            (
                "delete_catalog_service",
                psa.delete_catalog_service(&id).await.err(),
            ),
            (
                "add_contract_line",
                psa.add_contract_line(LineKey::new(&id, &id), values)
                    .await
                    .err(),
            ),
            (
                "update_contract_line",
                psa.update_contract_line(&line, values).await.err(),
            ),
        ];
        for (method, error) in writes {
            let want = format!("{method} refused: this command only reads from the PSA");
            assert!(
                matches!(&error, Some(PsaError::Permanent { message, .. }) if *message == want),
                "{method}: {error:?}"
            );
        }
        assert!(psa.calls().is_empty(), "{:?}", psa.calls());
    }
}
