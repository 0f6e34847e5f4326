//! The objects of the input that matter to us, typed, each with the document it came from.

use k8s_openapi::api::core::v1::Secret;
use serde::de::DeserializeOwned;

use crate::api::{ContractService, CustomerMapping, PsaConnection};

use super::yaml_docs::Document;

/// A typed object and where it was written.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub doc: Document,
    pub obj: T,
}

impl<T> Located<T> {
    pub fn name(&self) -> &str {
        self.doc.name()
    }

    pub fn namespace(&self) -> &str {
        self.doc.namespace()
    }
}

fn find<'a, T>(items: &'a [Located<T>], namespace: &str, name: &str) -> Option<&'a Located<T>> {
    items
        .iter()
        .find(|o| o.namespace() == namespace && o.name() == name)
}

/// The items in `connection`'s namespace whose `connectionRef` (read by `connection_of`) names it.
fn of_connection<'a, T>(
    items: &'a [Located<T>],
    connection: &'a Located<PsaConnection>,
    connection_of: fn(&T) -> &String,
) -> impl Iterator<Item = &'a Located<T>> + 'a {
    items.iter().filter(move |i| {
        i.namespace() == connection.namespace() && connection_of(&i.obj) == connection.name()
    })
}

/// Objects of the input: our three kinds and Secrets. Everything else in the input is ignored.
#[derive(Clone, Debug, Default)]
pub struct ResourceSet {
    pub connections: Vec<Located<PsaConnection>>,
    pub mappings: Vec<Located<CustomerMapping>>,
    pub services: Vec<Located<ContractService>>,
    pub secrets: Vec<Located<Secret>>,
}

impl ResourceSet {
    /// Adds `doc` when it is one of the kinds we read; `Err` with a message when it does not
    /// deserialize into its type.
    pub fn add(&mut self, doc: Document) -> Result<(), String> {
        fn typed<T: DeserializeOwned>(doc: Document) -> Result<Located<T>, String> {
            let obj = serde_json::from_value(doc.value.clone()).map_err(|e| e.to_string())?;
            Ok(Located { doc, obj })
        }
        match (doc.api_version(), doc.kind()) {
            ("v1", "Secret") => self.secrets.push(typed(doc)?),
            (_, "PsaConnection") => self.connections.push(typed(doc)?),
            (_, "CustomerMapping") => self.mappings.push(typed(doc)?),
            (_, "ContractService") => self.services.push(typed(doc)?),
            _ => {}
        }
        Ok(())
    }

    pub fn connection(&self, namespace: &str, name: &str) -> Option<&Located<PsaConnection>> {
        find(&self.connections, namespace, name)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Located<ContractService>> {
        find(&self.services, namespace, name)
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Located<Secret>> {
        find(&self.secrets, namespace, name)
    }

    /// Mappings of one connection.
    pub fn mappings_of<'a>(
        &'a self,
        connection: &'a Located<PsaConnection>,
    ) -> impl Iterator<Item = &'a Located<CustomerMapping>> + 'a {
        of_connection(&self.mappings, connection, |m| &m.spec.connection_ref.name)
    }

    /// ContractServices of one connection.
    pub fn services_of<'a>(
        &'a self,
        connection: &'a Located<PsaConnection>,
    ) -> impl Iterator<Item = &'a Located<ContractService>> + 'a {
        of_connection(&self.services, connection, |s| &s.spec.connection_ref.name)
    }
}
