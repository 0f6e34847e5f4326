//! The Dockerfile (reviewed, not built here: CI has no container engine) agrees with the chart,
//! the manifests and the crate: user, ports, binary, and a build context that holds every file
//! the release build reads.

use std::path::{Path, PathBuf};

use super::helm;
use super::tools::{find, repo};

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile")
}

/// Instructions of the last stage (from its FROM on), as (keyword, rest) pairs.
fn final_stage(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    let lines: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, rest) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_uppercase(), rest.trim().to_string())
        })
        .collect();
    let start = lines
        .iter()
        .rposition(|(k, _)| k == "FROM")
        .expect("a FROM");
    lines[start..].to_vec()
}

#[test]
fn image_runs_the_binary_as_the_charts_non_root_user() {
    let text = dockerfile();
    assert!(text.matches("\nFROM ").count() >= 2, "multi-stage build");
    assert!(text.contains("cargo build --release --locked --bin psa-operator"));
    // The production binary leaves out the dev tooling (dev, devcluster, sandbox, bench): it is
    // the default feature, so only an explicit --no-default-features drops it.
    let build_line = text
        .lines()
        .find(|l| l.contains("cargo build --release"))
        .unwrap();
    assert!(
        build_line.contains("--no-default-features"),
        "the image would ship the dev tooling: {build_line}"
    );
    let manifest = std::fs::read_to_string(super::tools::repo().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default = [\"dev-tools\"]"),
        "the dev tooling is no longer the `dev-tools` default feature: update the Dockerfile"
    );
    let stage = final_stage(&text);
    let get = |k: &str| {
        stage
            .iter()
            .rev()
            .find(|(kw, _)| kw == k)
            .map(|(_, v)| v.clone())
    };
    assert!(
        get("FROM").unwrap().contains("distroless"),
        "distroless final stage"
    );
    let user = get("USER").expect("final stage sets USER");
    let docs = helm::render(&[]);
    let pod = &find(&docs, "Deployment", "psa-operator")["spec"]["template"]["spec"];
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    let gid = pod["securityContext"]["runAsGroup"].as_u64().unwrap();
    assert_eq!(
        user,
        format!("{uid}:{gid}"),
        "numeric user, so runAsNonRoot can verify it"
    );
    assert_ne!(uid, 0);
    assert_eq!(
        get("ENTRYPOINT").unwrap(),
        r#"["/usr/local/bin/psa-operator"]"#
    );
    let ports = get("EXPOSE").unwrap();
    let svc = find(&docs, "Service", "psa-operator");
    let chart_ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].to_string())
        .collect();
    assert_eq!(ports.split_whitespace().collect::<Vec<_>>(), chart_ports);
    // The store directory exists and belongs to that user when no volume is mounted.
    assert!(text.contains(&format!("--chown={uid}:{gid} /out/var/lib/psa-operator")));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn build_context_holds_every_file_the_release_build_includes() {
    // The image copies Cargo.toml, Cargo.lock and src/ only. A non-test source that embeds a
    // file from elsewhere (seeds, fixtures) would build here and fail in the image build.
    assert!(
        !repo().join("build.rs").exists(),
        "a build script would need copying too"
    );
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let re = regex::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)""#).unwrap();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests sit in a `#[cfg(test)]` module at the end of a file; they may embed fixtures.
        let release_part = text.split("#[cfg(test)]").next().unwrap_or_default();
        for cap in re.captures_iter(release_part) {
            let target = file.parent().unwrap().join(&cap[1]);
            let target = target.canonicalize().unwrap_or(target);
            assert!(
                target.starts_with(src.canonicalize().unwrap()),
                "{} includes {} from outside src/: add it to the Dockerfile's COPY",
                file.display(),
                &cap[1]
            );
        }
    }
}
