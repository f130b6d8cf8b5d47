//! The files in `deploy/`, checked as far as this machine can: the systemd unit passes
//! `systemd-analyze verify` with no warning (an unknown or misplaced key is only a warning to
//! systemd, and a hardening line it ignores protects nothing), and the container image runs the
//! binary the way the unit does.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::peers::available;

#[test]
fn the_systemd_unit_verifies_without_warnings() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available("systemd-analyze", have, "apt-get install systemd") {
        return;
    }
    let unit = std::fs::read_to_string("deploy/systemd/loa.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/loa --config /etc/loa/loa.toml serve"));
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("loa.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/loa", env!("CARGO_BIN_EXE_loa")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about the host's own units (in a container without systemd running) are not ours.
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("loa.service")).collect();
    assert!(out.status.success() && ours.is_empty(), "{said}");
}

#[test]
fn the_container_runs_what_the_unit_runs() {
    let file = std::fs::read_to_string("deploy/container/Dockerfile").unwrap();
    // The same command line as the unit, as a non-root user, listening beyond the container.
    assert!(file.contains(r#"CMD ["--config", "/etc/loa/loa.toml", "serve"]"#));
    assert!(file.contains("USER nonroot"));
    assert!(file.contains("ENV LOA__SERVER__LISTEN=0.0.0.0:8080"));
    // The environment override the image relies on wins over the config file: the file's address
    // is taken, so `serve` comes up only if it listens where the environment says.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("loa.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[server]\nlisten = \"{}\"\n",
            dir.path().join("loa.db").display(),
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .current_dir(dir.path())
        .env("LOA__SERVER__LISTEN", "127.0.0.1:0")
        .env("LOA_LOG", "loa=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let serving = BufReader::new(stderr)
        .lines()
        .take(50)
        .map_while(Result::ok)
        .find(|l| l.contains("loa serving"));
    let _ = child.kill();
    let _ = child.wait();
    let line = serving.expect("serve listens at the address from the environment");
    assert!(
        !line.contains(&taken.local_addr().unwrap().to_string()),
        "{line}"
    );
}

/// A YAML file's documents as JSON, through PyYAML (no YAML crate is worth a dependency for tests).
fn yaml_docs(path: &str) -> Option<Vec<serde_json::Value>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            path,
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Runs `loa migrate` with a deployment's config file and environment, on the test's PostgreSQL
/// (a schema of its own) in place of the deployment's server: the keys the files set are real keys,
/// and the password arrives through `database.password_file`.
fn migrate_as_deployed(config: &std::path::Path, env: &[(String, String)], pg: &str) {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "secret-of-the-deployment\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loa"));
    cmd.arg("--config")
        .arg(std::fs::canonicalize(config).unwrap())
        .arg("migrate")
        .current_dir(dir.path());
    for (k, v) in env {
        let v = match k.as_str() {
            "LOA__DATABASE__URL" => {
                assert!(v.starts_with("postgres://"), "{v}");
                let userinfo = v["postgres://".len()..]
                    .split('@')
                    .next()
                    .unwrap_or_default();
                assert!(!userinfo.contains(':'), "no password in the URL: {v}");
                pg.to_string()
            }
            "LOA__DATABASE__PASSWORD_FILE" => password.display().to_string(),
            _ => v.clone(),
        };
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("database schema is up to date (postgres://"),
        "{said}"
    );
    assert!(!said.contains("secret-of-the-deployment"), "{said}");
}

fn env_pairs(list: &serde_json::Value) -> Vec<(String, String)> {
    match list {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn compose_and_kubernetes_run_two_instances_on_postgresql() {
    let Some(compose) = yaml_docs("deploy/compose/compose.yaml") else {
        assert!(!available(
            "PyYAML",
            false,
            "pip install pyyaml (reads the deploy files)"
        ));
        return;
    };
    let k8s = yaml_docs("deploy/k8s/loa.yaml").expect("deploy/k8s/loa.yaml is YAML");
    let Some(pg) = std::env::var("LOA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        common::record_skip("LOA_TEST_POSTGRES_URL is not set: the deployments' config not run");
        return;
    };

    // Compose: PostgreSQL, two Loa replicas built from our Dockerfile, nginx in front.
    let c = &compose[0]["services"];
    assert_eq!(c["loa"]["deploy"]["replicas"], 2);
    assert_eq!(
        c["loa"]["build"]["dockerfile"],
        "deploy/container/Dockerfile"
    );
    assert_eq!(
        c["loa"]["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert!(c["nginx"].is_object());
    assert!(
        c["mailpit"].is_object(),
        "a local mail server to try it with"
    );
    migrate_as_deployed(
        std::path::Path::new("deploy/compose/loa.toml"),
        &env_pairs(&c["loa"]["environment"]),
        &common::new_postgres_schema(&pg),
    );

    // Kubernetes: two replicas never both down, probed on /healthz and /readyz, the image's command.
    let kind = |k: &str| {
        k8s.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("a {k} in deploy/k8s/loa.yaml"))
    };
    assert!(kind("Secret")["stringData"]["password"].is_string());
    assert!(kind("Service")["spec"]["ports"].is_array());
    let dep = kind("Deployment");
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(kind("PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let pod = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(pod["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(pod["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        pod["args"],
        serde_json::json!(["--config", "/etc/loa/loa.toml", "serve"])
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("loa.toml");
    std::fs::write(
        &toml,
        kind("ConfigMap")["data"]["loa.toml"].as_str().unwrap(),
    )
    .unwrap();
    migrate_as_deployed(
        &toml,
        &env_pairs(&pod["env"]),
        &common::new_postgres_schema(&pg),
    );
}
