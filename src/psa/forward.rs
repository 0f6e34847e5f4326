//! Wrappers that put something in front of every call to a PSA (metrics, the dispatcher's request
//! budget, `plan`'s refusal to write) without restating the PSA traits.
//!
//! A wrapper says what it adds once, in [`Around`], and one of the macros below writes the trait
//! implementations that send every method through it:
//!
//! * `forward_psa!(Wrapper => field)` — all of [`Psa`](super::Psa) (and so `TicketDesk`,
//!   `Directory`, `Billing`) to the `Arc<dyn Psa>` in `field`;
//! * `forward_ticket_desk!(Wrapper => field)` — only [`TicketDesk`](super::TicketDesk) (the
//!   dispatcher's wrapper, in front of an `Arc<dyn TicketDesk>`).
//!
//! Every method is forwarded, those with a default in the traits too: a default would hide the
//! wrapped client's own answer (a re-claimed note added twice because `note_texts` said "cannot
//! list", a Kaseya BMS contract line doubled because `lists_contract_lines` said `true`). The
//! method lists below are the one place that knows the traits' methods: a method added to a
//! trait without a default stops every wrapper compiling until it is listed here, and one with a
//! default fails `cargo clippy` (`clippy::missing_trait_methods` is denied on each implementation).
//!
//! Each listed call is a `read` or a `write`; only `plan`/`import`'s wrapper treats them
//! differently (it refuses writes), so a new method must be classed with care.

use std::future::Future;
use std::pin::Pin;

use super::PsaResult;

/// A call to the wrapped PSA, not yet started (what an `async_trait` method returns).
pub(crate) type Call<'a, T> = Pin<Box<dyn Future<Output = PsaResult<T>> + Send + 'a>>;

/// What a wrapper does around each call it forwards. `method` is the trait method's name (metric
/// labels and `plan`'s call counts use it); `call` is the wrapped PSA's call, not yet started.
pub(crate) trait Around: Send + Sync {
    /// A call that only reads from the PSA.
    async fn read<T: Send>(&self, method: &'static str, call: Call<'_, T>) -> PsaResult<T>;

    /// A call that creates, changes or deletes something in the PSA; a read unless the wrapper
    /// says otherwise.
    async fn write<T: Send>(&self, method: &'static str, call: Call<'_, T>) -> PsaResult<T> {
        self.read(method, call).await
    }
}

/// Implements one PSA trait for `$wrapper`: each of `calls` goes through the wrapper's [`Around`]
/// hook (`read` or `write`), each of `answers` (plain, synchronous facts about the client) goes
/// straight to the wrapped client in field `$inner`.
macro_rules! forward_methods {
    ($trait:ident for $wrapper:ty => $inner:ident;
     calls { $($kind:ident $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* }
     answers { $($answer:ident($($aarg:ident: $aty:ty),*) -> $aret:ty;)* }) => {
        const _: () = {
            use $crate::psa::forward::Around;
            use $crate::psa::*;

            #[::async_trait::async_trait]
            #[deny(clippy::missing_trait_methods)]
            impl $trait for $wrapper {
                $(
                    async fn $name(&self, $($arg: $ty),*) -> PsaResult<$ret> {
                        let call = self.$inner.$name($($arg),*);
                        Around::$kind(self, stringify!($name), call).await
                    }
                )*
                $(
                    fn $answer(&self, $($aarg: $aty),*) -> $aret {
                        self.$inner.$answer($($aarg),*)
                    }
                )*
            }
        };
    };
}

/// Implements [`TicketDesk`](super::TicketDesk) for `$wrapper` through its [`Around`] hook.
macro_rules! forward_ticket_desk {
    ($wrapper:ty => $inner:ident) => {
        $crate::psa::forward::forward_methods! { TicketDesk for $wrapper => $inner;
            calls {
                read find_company_by(key: CompanyKey, value: &str) -> Option<Company>;
                read find_company_by_identifier(identifier: &str) -> Option<Company>;
                read find_company_by_name(name: &str) -> Option<Company>;
                read find_contact_by_email(q: ContactEmail<'_>) -> Option<Contact>;
                read find_contacts_by_email(q: ContactEmail<'_>) -> Vec<Contact>;
                read primary_contact(company: &Company) -> Option<Contact>;
                write create_ticket(t: &NewTicket) -> Ticket;
                read find_ticket_by_marker(marker: &str) -> Option<Ticket>;
                read get_ticket(id: &PsaId) -> Option<Ticket>;
                write add_note(ticket_id: &PsaId, text: &str) -> PsaId;
                read note_texts(ticket_id: &PsaId) -> Option<Vec<String>>;
                write close_ticket(close: CloseTicket<'_>) -> ();
                write reopen_ticket(reopen: ReopenTicket<'_>) -> ();
            }
            answers {}
        }
    };
}

/// Implements [`Psa`](super::Psa) and the three traits it is made of for `$wrapper` through its
/// [`Around`] hook.
macro_rules! forward_psa {
    ($wrapper:ty => $inner:ident) => {
        $crate::psa::forward::forward_ticket_desk!($wrapper => $inner);

        $crate::psa::forward::forward_methods! { Directory for $wrapper => $inner;
            calls {
                read get_company(id: &PsaId) -> Option<Company>;
                read list_companies(filter: &CompanyFilter) -> Vec<Company>;
                read find_contact_by_name(company_id: &PsaId, name: &str) -> Option<Contact>;
                read contacts_of_companies(company_ids: &[PsaId]) -> Option<Vec<DirectoryContact>>;
                read boards() -> Vec<Named>;
                read statuses(board_id: Option<&PsaId>) -> Vec<StatusInfo>;
                read ticket_types(board_id: Option<&PsaId>) -> Vec<Named>;
                read issue_types(board_id: Option<&PsaId>) -> Vec<Named>;
                read sub_issue_types(board_id: Option<&PsaId>, issue_type_id: &PsaId) -> Vec<Named>;
                read priorities() -> Vec<Named>;
                read sources() -> Vec<Named>;
                read invalid_type_combinations(board_id: Option<&PsaId>, wanted: &[TypeCombination]) -> Vec<usize>;
            }
            answers {}
        }

        $crate::psa::forward::forward_methods! { Billing for $wrapper => $inner;
            calls {
                read find_contract(company_id: &PsaId, name: &str) -> Option<Contract>;
                read contracts_of_companies(company_ids: &[PsaId]) -> Option<Vec<Contract>>;
                read find_catalog_service(name: &str) -> Option<CatalogService>;
                write create_catalog_service(spec: &CatalogServiceSpec) -> CatalogService;
                write update_catalog_service(id: &PsaId, spec: &CatalogServiceSpec) -> CatalogService;
                write delete_catalog_service(id: &PsaId) -> ();
                read find_contract_line(key: LineKey<'_>) -> Option<ContractLine>;
                write add_contract_line(key: LineKey<'_>, values: LineValues) -> ContractLine;
                write update_contract_line(line: &ContractLine, values: LineValues) -> LineUpdate;
            }
            answers {
                lists_contract_lines() -> bool;
                line_update_method(line: &ContractLine, to: LineValues) -> Option<String>;
            }
        }

        const _: () = {
            use $crate::psa::forward::Around;
            use $crate::psa::*;

            #[::async_trait::async_trait]
            #[deny(clippy::missing_trait_methods)]
            impl Psa for $wrapper {
                fn provider(&self) -> Provider {
                    self.$inner.provider()
                }
                async fn verify(&self) -> PsaResult<()> {
                    Around::read(self, "verify", self.$inner.verify()).await
                }
                async fn endpoint(&self) -> Option<String> {
                    self.$inner.endpoint().await
                }
                async fn missing_permissions(
                    &self,
                    features: &[Feature],
                ) -> PsaResult<Vec<MissingPermission>> {
                    let call = self.$inner.missing_permissions(features);
                    Around::read(self, "missing_permissions", call).await
                }
                fn shared_budget(&self) -> Option<SharedBudget> {
                    self.$inner.shared_budget()
                }
            }
        };
    };
}

pub(crate) use {forward_methods, forward_psa, forward_ticket_desk};
