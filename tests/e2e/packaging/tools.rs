//! Locating the repository and the external tools, running them, and reading YAML streams.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root (the crate directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn first_executable(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.is_file())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn tools_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PSA_TOOLS_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/psa-operator-tools"))
}

/// The helm binary; panics with the install hint when it is missing (CI installs it).
pub fn helm() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("PSA_HELM") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(dir) = tools_dir() {
        candidates.push(dir.join("helm"));
    }
    first_executable(candidates)
        .or_else(|| on_path("helm"))
        .expect("helm not found: run .ci/install-tools or set PSA_HELM")
}

/// The kubectl binary (it carries kustomize).
pub fn kubectl() -> PathBuf {
    std::env::var_os("PSA_KUBECTL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| on_path("kubectl"))
        .expect("kubectl not found: run .ci/install-tools or set PSA_KUBECTL")
}

/// A Lua 5.x interpreter (Argo CD runs health scripts with gopher-lua, a Lua 5.1 dialect; the
/// scripts use only what every 5.x has).
pub fn lua() -> PathBuf {
    std::env::var_os("PSA_LUA")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| on_path("lua5.4"))
        .or_else(|| on_path("lua"))
        .expect("lua5.4 not found: run .ci/install-tools (Debian package lua5.4) or set PSA_LUA")
}

/// Output of a finished command.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args…` in the repository root.
pub fn run(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command that must succeed and returns its standard output.
pub fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.ok,
        "{} {} failed:\n{}\n{}",
        program.display(),
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Every non-empty document of a YAML stream, as JSON values.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            let v: serde_yaml::Value =
                serde::Deserialize::deserialize(d).expect("valid YAML document");
            serde_json::to_value(v).expect("YAML converts to JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Every document of every `*.yaml` file in `dir` (sorted by file name), with its file name.
pub fn yaml_dir(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(f).expect("read YAML file");
            yaml_docs(&text).into_iter().map(move |d| (name.clone(), d))
        })
        .collect()
}

/// The generated CRDs as shipped (crds/), in `CRD_FILES` order.
pub fn generated_crds() -> Vec<Value> {
    psa_operator::api::crdgen::CRD_FILES
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(repo().join("crds").join(f)).unwrap();
            yaml_docs(&text).remove(0)
        })
        .collect()
}

/// The objects of `docs` with this kind.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one object with this kind and name.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name}, found {}",
        found.len()
    );
    found[0]
}

/// Chromium (Debian's `chromium` package; $PSA_CHROMIUM overrides), for the sandbox pages.
pub fn chromium() -> PathBuf {
    std::env::var_os("PSA_CHROMIUM")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| on_path("chromium"))
        .or_else(|| on_path("chromium-browser"))
        .expect("chromium not found: run .ci/install-tools (Debian package chromium) or set PSA_CHROMIUM")
}

/// promtool (Debian's `prometheus` package; $PSA_PROMTOOL overrides), for the alert rules.
pub fn promtool() -> PathBuf {
    std::env::var_os("PSA_PROMTOOL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| on_path("promtool"))
        .expect("promtool not found: run .ci/install-tools (Debian package prometheus) or set PSA_PROMTOOL")
}

/// The DOM of `url` after Chromium loaded it headless (no JavaScript is needed by our pages;
/// the flags keep Chromium off the network and away from the user's profile).
pub fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("temporary profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium --dump-dom {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
