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
