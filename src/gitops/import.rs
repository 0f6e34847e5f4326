//! `psa-operator import`: the seeds' "Add to SaaS Alerts" in reverse, for git — list the PSA's
//! companies and write a CustomerMapping scaffold for each one not mapped yet, with the
//! company's default contact when the PSA records one.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::json;

use super::args::ImportArgs;
use crate::api::{CustomerMapping, PsaConnection, GROUP, VERSION};
use crate::controller::factory::{PsaFactory, RealPsaFactory};
use crate::psa::{Company, CompanyFilter, Directory, Psa};

use super::credentials::{credentials_for, optional_cluster_client};
use super::read_only::ReadOnlyPsa;
use super::resource_set::{Located, ResourceSet};
use super::schema::check_object;
use super::yaml_docs::{parse_all, read_inputs};

/// One CustomerMapping to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaffold {
    pub name: String,
    /// A YAML document (comment header included, no `---`).
    pub yaml: String,
}

/// What the import found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportResult {
    pub listed: usize,
    /// Companies skipped because a mapping (or the catch-all) already covers them.
    pub already_mapped: Vec<String>,
    pub inactive: usize,
    pub scaffolds: Vec<Scaffold>,
}

/// A Kubernetes name from a company identifier or name: lower-case, `-` for anything else,
/// at most 63 characters.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.trim().chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn same(a: &str, b: &str) -> bool {
    !a.trim().is_empty() && a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether `existing` (mappings of the connection) or the catch-all already covers `c`.
fn covered(c: &Company, existing: &[&CustomerMapping], catch_all: Option<&str>) -> bool {
    if catch_all.is_some_and(|ca| same(ca, &c.identifier) || same(ca, &c.name)) {
        return true;
    }
    existing.iter().any(|m| {
        let s = &m.spec;
        s.company
            .identifier
            .as_deref()
            .is_some_and(|i| same(i, &c.identifier))
            || s.company.name.as_deref().is_some_and(|n| same(n, &c.name))
            || same(&s.organization, &c.name)
    })
}

/// The scaffolds for `companies` (pure). `taken` holds the names already used in the namespace.
pub fn scaffolds(
    conn: &Located<PsaConnection>,
    companies: &[Company],
    existing: &[&CustomerMapping],
    mut taken: BTreeSet<String>,
) -> ImportResult {
    let catch_all = conn.obj.spec.catch_all.as_ref().map(|c| c.company.as_str());
    let mut r = ImportResult {
        listed: companies.len(),
        ..Default::default()
    };
    for c in companies {
        if !c.active {
            r.inactive += 1;
            continue;
        }
        if covered(c, existing, catch_all) {
            r.already_mapped.push(c.name.clone());
            continue;
        }
        let base = [slug(&c.identifier), slug(&c.name)]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| format!("company-{}", slug(&c.id)));
        let name = (1..)
            .map(|i| {
                if i == 1 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|n| !taken.contains(n))
            .unwrap_or(base);
        taken.insert(name.clone());
        r.scaffolds.push(Scaffold {
            yaml: scaffold_yaml(conn, c, &name),
            name,
        });
    }
    r
}

fn scaffold_yaml(conn: &Located<PsaConnection>, c: &Company, name: &str) -> String {
    let company = if c.identifier.trim().is_empty() {
        json!({"name": c.name})
    } else {
        json!({"identifier": c.identifier})
    };
    let mut metadata = json!({"name": name});
    if !conn.namespace().is_empty() {
        metadata["namespace"] = json!(conn.namespace());
    }
    let mut spec = json!({
        "connectionRef": {"name": conn.name()},
        "organization": c.name,
        "company": company,
    });
    if let Some(contact) = &c.default_contact_name {
        spec["defaultContact"] = json!({"name": contact});
    }
    let obj = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "CustomerMapping",
        "metadata": metadata,
        "spec": spec,
    });
    let mut about = format!("# PSA company {:?}", c.name);
    let mut facts = vec![];
    if !c.identifier.is_empty() {
        facts.push(format!("identifier {}", c.identifier));
    }
    facts.push(format!("id {}", c.id));
    if let Some(t) = &c.company_type {
        facts.push(format!("type {t}"));
    }
    about.push_str(&format!(" ({}).\n", facts.join(", ")));
    about.push_str(
        "# spec.organization must be the name your alerting tool gives this customer; check it.\n",
    );
    if c.default_contact_name.is_none() {
        about.push_str(
            "# The company record names no default contact: users without a contact of their own\n\
             # get the company's primary contact in the PSA if it has one (Kaseya BMS, Autotask),\n\
             # else none; add spec.defaultContact {email: ...} to choose one.\n",
        );
    }
    // Serialising a JSON value built here cannot fail.
    let body = serde_yaml::to_string(&obj).unwrap_or_default();
    format!("{about}{body}")
}

/// The connection of `--connection-file` and the objects next to it (a Secret may be there).
fn read_connection(args: &ImportArgs) -> anyhow::Result<(Located<PsaConnection>, ResourceSet)> {
    let mut paths = vec![args.connection_file.clone()];
    paths.extend(args.secret_file.clone());
    let (docs, errors) = parse_all(&read_inputs(&paths)?);
    if let Some(e) = errors.first() {
        bail!("{e}");
    }
    let mut set = ResourceSet::default();
    for d in docs {
        if d.kind() == "PsaConnection" {
            if let Some(problem) = check_object(&d).first() {
                bail!("{problem}");
            }
        }
        set.add(d).map_err(anyhow::Error::msg)?;
    }
    match set.connections.len() {
        1 => Ok((set.connections[0].clone(), set)),
        0 => bail!("{} holds no PsaConnection", args.connection_file.display()),
        n => bail!(
            "{} holds {n} PsaConnections; keep the one to import from",
            args.connection_file.display()
        ),
    }
}

/// Mappings of the connection already in git, and every mapping name of its namespace.
fn existing_mappings(
    paths: &[std::path::PathBuf],
    conn: &Located<PsaConnection>,
) -> anyhow::Result<(Vec<CustomerMapping>, BTreeSet<String>)> {
    if paths.is_empty() {
        return Ok((vec![], BTreeSet::new()));
    }
    let (docs, errors) = parse_all(&read_inputs(paths)?);
    if let Some(e) = errors.first() {
        bail!("{e}");
    }
    let mut set = ResourceSet::default();
    for d in docs.into_iter().filter(|d| d.kind() == "CustomerMapping") {
        // A mapping that does not read is reported by `validate`; here it only cannot be skipped.
        let _ = set.add(d);
    }
    let names = set
        .mappings
        .iter()
        .filter(|m| m.namespace() == conn.namespace())
        .map(|m| m.name().to_string())
        .collect();
    let mine = set.mappings_of(conn).map(|m| m.obj.clone()).collect();
    Ok((mine, names))
}

fn write_out(dir: &Path, scaffolds: &[Scaffold]) -> anyhow::Result<(usize, Vec<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    let mut kept = vec![];
    for s in scaffolds {
        let path = dir.join(format!("customermapping-{}.yaml", s.name));
        if path.exists() {
            kept.push(path.display().to_string());
            continue;
        }
        std::fs::write(&path, &s.yaml)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    Ok((written, kept))
}

async fn execute(args: ImportArgs) -> anyhow::Result<()> {
    let (conn, set) = read_connection(&args)?;
    let cluster = optional_cluster_client(args.kubeconfig.as_deref()).await?;
    let creds = credentials_for(&conn.obj, conn.namespace(), &set, cluster.as_ref(), None)
        .await
        .map_err(anyhow::Error::msg)?;
    let client = RealPsaFactory
        .build(&conn.obj.spec.provider, &creds.data)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let psa = ReadOnlyPsa::new(client);
    let filter = CompanyFilter {
        company_type: args.filter_type.clone(),
        parent_only: args.parent_only,
    };
    let companies = psa.list_companies(&filter).await?;
    let (existing, taken) = existing_mappings(&args.existing, &conn)?;
    let refs: Vec<&CustomerMapping> = existing.iter().collect();
    let r = scaffolds(&conn, &companies, &refs, taken);
    match &args.out_dir {
        Some(dir) => {
            let (written, kept) = write_out(dir, &r.scaffolds)?;
            for k in kept {
                eprintln!("kept {k}: it exists already");
            }
            eprintln!("wrote {written} file(s) to {}", dir.display());
        }
        None => {
            let docs: Vec<&str> = r.scaffolds.iter().map(|s| s.yaml.as_str()).collect();
            use std::io::Write as _;
            std::io::stdout()
                .lock()
                .write_all(docs.join("---\n").as_bytes())?;
        }
    }
    eprintln!(
        "{} compan(ies) listed from {} ({}): {} already mapped or catch-all, {} inactive, {} scaffold(s)",
        r.listed,
        psa.provider().as_str(),
        creds.source,
        r.already_mapped.len(),
        r.inactive,
        r.scaffolds.len()
    );
    Ok(())
}

/// The subcommand.
pub fn run(args: ImportArgs) -> i32 {
    crate::cli::block_on(execute(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::yaml_docs::{parse_documents, Source};

    fn conn() -> Located<PsaConnection> {
        let text = "apiVersion: psa-operator.io/v1alpha1\nkind: PsaConnection\nmetadata: {name: demo-cw, namespace: psa}\n\
                    spec:\n  provider:\n    connectWise: {url: 'http://x', companyId: demo, clientId: c, credentialsSecretRef: {name: k}}\n  \
                    catchAll: {company: Default Customer}\n";
        let doc = parse_documents(&Source {
            name: "c.yaml".into(),
            text: text.into(),
        })
        .unwrap()
        .remove(0);
        let mut set = ResourceSet::default();
        set.add(doc).unwrap();
        set.connections.remove(0)
    }

    fn company(id: &str, ident: &str, name: &str, contact: Option<&str>) -> Company {
        Company {
            id: id.into(),
            identifier: ident.into(),
            name: name.into(),
            active: true,
            default_contact_name: contact.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("CONTOSO"), "contoso");
        assert_eq!(slug("  Fabrikam, Inc. "), "fabrikam-inc");
        assert_eq!(slug("Ünïcode & Co"), "n-code-co");
        assert_eq!(slug("---"), "");
    }

    #[test]
    fn unmapped_companies_become_valid_mappings() {
        let existing: CustomerMapping = serde_json::from_value(serde_json::json!({
            "apiVersion": "psa-operator.io/v1alpha1", "kind": "CustomerMapping",
            "metadata": {"name": "contoso", "namespace": "psa"},
            "spec": {"connectionRef": {"name": "demo-cw"}, "organization": "Contoso Ltd",
                     "company": {"identifier": "contoso"}}
        }))
        .unwrap();
        let mut gone = company("9", "OLD", "Old Co", None);
        gone.active = false;
        let companies = vec![
            company("1", "DefaultCustomer", "Default Customer", None),
            company("2", "CONTOSO", "Contoso Ltd", Some("Alert Contact")),
            company("3", "FABRIKAM", "Fabrikam Inc", Some("Alert Contact")),
            company("4", "", "Tailspin Toys", None),
            company("5", "fabrikam!", "Fabrikam Two", None),
            gone,
        ];
        let r = scaffolds(
            &conn(),
            &companies,
            &[&existing],
            BTreeSet::from(["contoso".to_string()]),
        );
        assert_eq!(r.listed, 6);
        assert_eq!(r.inactive, 1);
        assert_eq!(r.already_mapped, ["Default Customer", "Contoso Ltd"]);
        let names: Vec<&str> = r.scaffolds.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fabrikam", "tailspin-toys", "fabrikam-2"]);
        let fab = &r.scaffolds[0].yaml;
        assert!(
            fab.contains("defaultContact:\n    name: Alert Contact"),
            "{fab}"
        );
        assert!(r.scaffolds[1]
            .yaml
            .contains("company:\n    name: Tailspin Toys"));
        assert!(r.scaffolds[1]
            .yaml
            .contains("# The company record names no default contact"));
        // Every scaffold passes the CRD schema and CEL rules.
        for s in &r.scaffolds {
            let docs = parse_documents(&Source {
                name: s.name.clone(),
                text: s.yaml.clone(),
            })
            .unwrap();
            assert_eq!(check_object(&docs[0]), vec![], "{}", s.yaml);
        }
    }
}
