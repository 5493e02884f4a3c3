//! Benchmarks for `cargo bench -p assay`: policy evaluation over the Gatekeeper library, and
//! `assay check` over a generated estate of 10,000 manifests. Prints figures for BENCHMARKS.md.
//!
//! A plain harness (no criterion): each figure is a distribution of real evaluations, and the
//! wall time of the real release binary.

#[allow(unreachable_pub)]
#[path = "../tests/common/apiserver.rs"]
mod apiserver;
mod common;
#[allow(unreachable_pub, dead_code)]
#[path = "../tests/common/prometheus.rs"]
mod prometheus;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assay_estate::manifest::parse_objects;
use assay_policy::gatekeeper::{Constraint, Template};
use assay_policy::{rego, review};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn objects_in(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_objects(&path.display().to_string(), &text).0.into_iter().map(|o| o.value).collect()
}

/// Every (constraint, sample object) pair of the library's general policies, evaluated many times.
fn gatekeeper_library(root: &Path) {
    let mut times = Vec::new();
    let mut pairs = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root).into_iter().flatten().flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let Some(template_obj) = objects_in(&dir.join("template.yaml")).into_iter().next() else { continue };
        let object = assay_estate::Object { path: "template.yaml".into(), line: 1, value: template_obj };
        let Some(template) = Template::compile(&object, &rego::to_rego(&serde_json::json!({})), &mut Vec::new()) else {
            continue;
        };
        let mut samples: Vec<PathBuf> =
            std::fs::read_dir(dir.join("samples")).into_iter().flatten().flatten().map(|e| e.path()).collect();
        samples.sort();
        for sample in samples {
            let constraint_obj = objects_in(&sample.join("constraint.yaml")).into_iter().next();
            let Some(constraint_obj) = constraint_obj else { continue };
            let object = assay_estate::Object { path: "constraint.yaml".into(), line: 1, value: constraint_obj };
            let Some(constraint) = Constraint::parse(&object, &mut Vec::new()) else { continue };
            let mut files: Vec<PathBuf> =
                std::fs::read_dir(&sample).into_iter().flatten().flatten().map(|e| e.path()).collect();
            files.sort();
            for file in
                files.iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("example_")))
            {
                for obj in objects_in(file) {
                    let request = if obj["kind"] == "AdmissionReview" {
                        review::complete_request(obj["request"].clone())
                    } else {
                        review::create_request(&obj)
                    };
                    let request = rego::to_rego(&request);
                    pairs += 1;
                    for _ in 0..200 {
                        let started = Instant::now();
                        let result = template.violations(&request, &constraint.parameters_rego);
                        times.push(started.elapsed());
                        std::hint::black_box(result.ok());
                    }
                }
            }
        }
    }
    times.sort();
    println!(
        "gatekeeper library: {pairs} (object x constraint) pairs, {} evaluations: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.9).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

const LABEL_TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: benchlabels}\nspec:\n  crd: {spec: {names: {kind: BenchLabels}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package benchlabels\n        violation[{\"msg\": msg}] {\n          required := input.parameters.labels[_]\n          not input.review.object.metadata.labels[required]\n          msg := sprintf(\"missing label %v\", [required])\n        }\n";
const IMAGE_TEMPLATE: &str = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: benchimages}\nspec:\n  crd: {spec: {names: {kind: BenchImages}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package benchimages\n        violation[{\"msg\": msg}] {\n          c := input.review.object.spec.template.spec.containers[_]\n          not startswith(c.image, input.parameters.registry)\n          msg := sprintf(\"image %v not from %v\", [c.image, input.parameters.registry])\n        }\n";

/// Two constraints per `i`: required labels (deny) and an image registry (warn, in namespaces
/// `ns-{i}*`).
fn write_constraints(root: &Path, range: std::ops::Range<usize>) -> std::io::Result<()> {
    for i in range {
        std::fs::write(
            root.join(format!("constraints/labels-{i}.yaml")),
            format!(
                "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: BenchLabels\nmetadata: {{name: labels-{i}}}\nspec:\n  match: {{kinds: [{{apiGroups: [apps], kinds: [Deployment]}}]}}\n  parameters: {{labels: [team, label-{i}]}}\n"
            ),
        )?;
        std::fs::write(
            root.join(format!("constraints/images-{i}.yaml")),
            format!(
                "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: BenchImages\nmetadata: {{name: images-{i}}}\nspec:\n  enforcementAction: warn\n  match: {{kinds: [{{apiGroups: [apps], kinds: [Deployment]}}], namespaces: [ns-{i}*]}}\n  parameters: {{registry: registry-{i}.example.com/}}\n"
            ),
        )?;
    }
    Ok(())
}

/// An estate of 10,000 Deployments (one file each), 10 Rego policies and 10 constraints.
fn generate_estate(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("policies"))?;
    std::fs::create_dir_all(root.join("constraints"))?;
    for i in 0..10 {
        let policy = format!(
            "package bench.p{i}\n\ndeny contains msg if {{\n\tinput.request.kind.kind == \"Deployment\"\n\tsome c in input.request.object.spec.template.spec.containers\n\tnot c.resources.limits.cpu\n\tendswith(c.name, \"-{i}\")\n\tmsg := sprintf(\"container %s has no cpu limit\", [c.name])\n}}\n"
        );
        std::fs::write(root.join(format!("policies/p{i}.rego")), policy)?;
    }
    std::fs::write(root.join("constraints/labels-template.yaml"), LABEL_TEMPLATE)?;
    std::fs::write(root.join("constraints/images-template.yaml"), IMAGE_TEMPLATE)?;
    write_constraints(root, 0..5)?;
    for i in 0..10_000 {
        let dir = root.join(format!("manifests/team-{}", i / 100));
        std::fs::create_dir_all(&dir)?;
        let manifest = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: ns-{ns}\n  labels: {{team: t{team}, label-{l}: x}}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: main-{c}\n          image: registry-{r}.example.com/app:{i}\n          resources: {{limits: {{memory: 1Gi}}}}\n        - name: sidecar\n          image: registry-0.example.com/proxy:1.0\n          resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}\n",
            ns = i % 50,
            team = i % 7,
            l = i % 5,
            c = i % 10,
            r = i % 6,
        );
        std::fs::write(dir.join(format!("app-{i}.yaml")), manifest)?;
    }
    Ok(())
}

/// Five runs of `assay check --format json` on `dir`: their wall times, sorted, and the last
/// verdict.
fn time_check(dir: &Path) -> (Vec<Duration>, serde_json::Value) {
    let mut times = Vec::new();
    let mut verdict = serde_json::Value::Null;
    for _ in 0..5 {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(["check", "--format", "json"]).arg(dir).output();
        times.push(started.elapsed());
        if let Ok(out) = out {
            verdict = serde_json::from_slice(&out.stdout).unwrap_or_default();
        }
    }
    times.sort();
    (times, verdict)
}

fn check_10k() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return println!("check 10k: cannot make a temp dir: {e}"),
    };
    // ASSAY_BENCH_ESTATE=DIR also writes the generated estate there, to profile it by hand.
    if let Some(keep) = std::env::var_os("ASSAY_BENCH_ESTATE") {
        let _ = generate_estate(Path::new(&keep));
    }
    if let Err(e) = generate_estate(dir.path()) {
        return println!("check 10k: cannot generate the estate: {e}");
    }
    let (times, v) = time_check(dir.path());
    let summary = v["summary"].to_string();
    println!(
        "assay check, 10,000 manifests x (10 policies + 10 constraints), 5 runs: min {:.2} s, median {:.2} s, max {:.2} s; summary {summary}",
        times[0].as_secs_f64(),
        times[2].as_secs_f64(),
        times[4].as_secs_f64()
    );
}

/// What the API server would answer for a Deployment applied from `manifest`: server-set
/// metadata, defaulted fields, status; every hundredth one with a hand-edited image.
fn as_live(manifest: &serde_json::Value, i: usize) -> serde_json::Value {
    let mut live = manifest.clone();
    live["metadata"]["uid"] = serde_json::json!(format!("00000000-0000-4000-8000-{i:012}"));
    live["metadata"]["resourceVersion"] = serde_json::json!(format!("{}", 100_000 + i));
    live["metadata"]["creationTimestamp"] = serde_json::json!("2026-11-30T09:00:00Z");
    live["metadata"]["managedFields"] = serde_json::json!([{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    live["spec"]["progressDeadlineSeconds"] = serde_json::json!(600);
    live["spec"]["strategy"] =
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    if let Some(containers) = live["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for c in containers {
            c["imagePullPolicy"] = serde_json::json!("IfNotPresent");
            c["terminationMessagePath"] = serde_json::json!("/dev/termination-log");
        }
    }
    if i.is_multiple_of(100) {
        live["spec"]["template"]["spec"]["containers"][0]["image"] = serde_json::json!("registry.example.com/hotfix:1");
    }
    live["status"] = serde_json::json!({"replicas": 2, "readyReplicas": 2, "observedGeneration": 1});
    live
}

/// `assay drift` on 10,000 live Deployments, and with `--audit` against the example estate's
/// policies plus 20 Gatekeeper constraints.
fn drift_10k() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return println!("drift 10k: cannot make a temp dir: {e}"),
    };
    let root = dir.path().join("estate");
    if let Err(e) = generate_estate(&root) {
        return println!("drift 10k: cannot generate the estate: {e}");
    }
    // 20 constraints: ten more, and the example estate's policies and constraints.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    let copied = (|| -> std::io::Result<()> {
        write_constraints(&root, 5..10)?;
        std::fs::create_dir_all(root.join("policies/k8s"))?;
        for entry in std::fs::read_dir(example.join("policies/k8s"))? {
            let path = entry?.path();
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, root.join("policies/k8s").join(name))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = copied {
        return println!("drift 10k: cannot write the estate: {e}");
    }
    let mut items = Vec::new();
    for i in 0..10_000 {
        let path = root.join(format!("manifests/team-{}/app-{i}.yaml", i / 100));
        for object in objects_in(&path) {
            items.push(as_live(&object, i));
        }
    }
    let live = dir.path().join("live.json");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items.clone()});
    if std::fs::write(&live, serde_json::to_vec(&list).unwrap_or_default()).is_err() {
        return println!("drift 10k: cannot write the live state");
    }
    let live_arg = format!("{}", live.display());
    // `drift-serve`: the server's part only.
    let only_serve = std::env::args().any(|a| a == "drift-serve");
    for (what, audit) in [("compare", false), ("compare + audit", true)].into_iter().filter(|_| !only_serve) {
        let mut times = Vec::new();
        let mut counts = String::new();
        for _ in 0..5 {
            let mut args = vec![
                "drift".to_string(),
                root.display().to_string(),
                "--live".into(),
                live_arg.clone(),
                "--format".into(),
                "json".into(),
            ];
            if audit {
                args.push("--audit".into());
            }
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(&args).output();
            times.push(started.elapsed());
            if let Ok(out) = out {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let audit = v["clusters"][0]["audit"].as_array().map(Vec::len);
                counts = format!("{} audit findings {audit:?}", v["clusters"][0]["counts"]);
            }
        }
        times.sort();
        println!(
            "assay drift, 10,000 live Deployments, {what}{}, 5 runs: min {:.2} s, median {:.2} s, max {:.2} s; {counts}",
            if audit { " (example policies + 20 constraints)" } else { "" },
            times[0].as_secs_f64(),
            times[2].as_secs_f64(),
            times[4].as_secs_f64()
        );
    }
    serve_watching(&root, items);
}

/// `assay serve --watch-cluster` watching the 10,000 Deployments through an API server: its
/// memory once the first comparison and audit are served.
fn serve_watching(estate: &Path, items: Vec<serde_json::Value>) {
    let (port, _api) = apiserver::serve(apiserver::Cluster {
        objects: items,
        token: "bench".into(),
        page: Some(500),
        ..Default::default()
    });
    let Ok(dir) = tempfile::tempdir() else { return println!("serve watching: no temp dir") };
    let config = dir.path().join("kubeconfig");
    if std::fs::write(&config, apiserver::kubeconfig(&[("bench", port)], "bench")).is_err() {
        return println!("serve watching: cannot write the kubeconfig");
    }
    let started = Instant::now();
    // ASSAY_BENCH_WRAP runs the server under a profiler (`heaptrack`, say); the memory read
    // is then the profiler's.
    let mut command = match std::env::var_os("ASSAY_BENCH_WRAP") {
        Some(wrap) => {
            let mut c = Command::new(wrap);
            c.arg(env!("CARGO_BIN_EXE_assay"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_assay")),
    };
    let child = command
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--watch-cluster",
            "default",
            "--kube-context",
            "bench",
            "--drift-resync",
            "1h",
            "--estate",
        ])
        .arg(estate)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("KUBECONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else { return println!("serve watching: cannot start assay serve") };
    use std::io::BufRead as _;
    let mut addr = None;
    if let Some(stderr) = child.stderr.take() {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("assay serve: listening on http://") {
                addr = Some(a.to_string());
                break;
            }
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        return println!("serve watching: the server did not start");
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut ready = None;
    let tries = if std::env::var_os("ASSAY_BENCH_WRAP").is_some() { 6_000 } else { 600 };
    for _ in 0..tries {
        if let Ok(mut r) = agent.get(&format!("http://{addr}/v1/drift?status=drifted")).call()
            && r.status() == 200
        {
            ready = Some((started.elapsed(), r.body_mut().read_to_string().unwrap_or_default()));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the watches settle, then read the memory.
    std::thread::sleep(Duration::from_secs(3));
    let (rss, peak) = common::memory_mib(child.id()).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    match ready {
        Some((took, body)) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            println!(
                "assay serve --watch-cluster, 10,000 live Deployments in 50 namespaces: first comparison + audit served after {:.1} s; RSS {:.0} MiB, peak {:.0} MiB; counts {}",
                took.as_secs_f64(),
                rss,
                peak,
                v["clusters"][0]["counts"]
            );
        }
        None => println!("serve watching: /v1/drift never answered"),
    }
}

/// `assay cost rightsize` over 1,000 Deployments (20 namespaces) with 14 days of use at a
/// 5-minute step in a real Prometheus (backfilled with promtool): the wall time of the command
/// and the range queries it made.
fn rightsize_1k() {
    use std::io::Write as _;
    let Ok(dir) = tempfile::tempdir() else { return println!("rightsize: no temp dir") };
    let end: i64 = 1_763_164_800;
    let om = dir.path().join("usage.om");
    let written = (|| -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&om)?);
        writeln!(out, "# TYPE container_cpu_usage_seconds_total counter")?;
        for i in 0..1000 {
            let mut used = 0.0;
            for k in 0..=4032i64 {
                let t = end - 14 * 86_400 + 300 * k;
                writeln!(
                    out,
                    "container_cpu_usage_seconds_total{{namespace=\"n{}\",pod=\"w{i}-5d8f7c9b4-k2x9p\",container=\"c\"}} {used} {t}",
                    i % 20
                )?;
                used += 300.0 * (0.1 + 0.1 * ((k % 288) as f64 / 288.0));
            }
        }
        writeln!(out, "# TYPE container_memory_working_set_bytes gauge")?;
        for i in 0..1000 {
            for k in 0..=4032i64 {
                let t = end - 14 * 86_400 + 300 * k;
                writeln!(
                    out,
                    "container_memory_working_set_bytes{{namespace=\"n{}\",pod=\"w{i}-5d8f7c9b4-k2x9p\",container=\"c\"}} {} {t}",
                    i % 20,
                    300 * 1_048_576 + (k % 288) * 65_536
                )?;
            }
        }
        writeln!(out, "# EOF")?;
        let estate = dir.path().join("estate");
        std::fs::create_dir_all(estate.join("manifests"))?;
        std::fs::create_dir_all(estate.join("pricing"))?;
        std::fs::write(
            estate.join("assay.yaml"),
            "clusters:\n  - {name: eu, region: eu-west-1, paths: [\"manifests/**\"]}\n",
        )?;
        std::fs::write(
            estate.join("pricing/p.yaml"),
            "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: p}\nspec:\n  regions:\n    eu-west-1: {vcpuHour: 0.048, memoryGiBHour: 0.0065}\n",
        )?;
        for i in 0..1000 {
            std::fs::write(
                estate.join(format!("manifests/w{i}.yaml")),
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: w{i}, namespace: n{}}}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - {{name: c, resources: {{requests: {{cpu: \"1\", memory: 2Gi}}}}}}\n",
                    i % 20
                ),
            )?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        return println!("rightsize: cannot write the data: {e}");
    }
    let loading = Instant::now();
    let estate = dir.path().join("estate");
    let p = prometheus::start_from(dir, &om);
    println!("rightsize: 8.07 million samples backfilled and served in {:.0} s", loading.elapsed().as_secs_f64());
    let mut times = Vec::new();
    let mut summary = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["cost", "rightsize", "--prometheus", &p.url, "--at", "2025-11-15T00:00:00Z", "--format", "json"])
            .arg(&estate)
            .output();
        times.push(started.elapsed());
        if let Ok(out) = out {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            summary = format!(
                "{} queries, {} workloads with advice, {} problems",
                v["queries"],
                v["workloads"].as_array().map_or(0, Vec::len),
                v["problems"].as_array().map_or(0, Vec::len)
            );
        }
    }
    times.sort();
    println!(
        "assay cost rightsize, 1,000 workloads x 14 days at 5 min, 5 runs: min {:.2} s, median {:.2} s, max {:.2} s; {summary}",
        times[0].as_secs_f64(),
        times[2].as_secs_f64(),
        times[4].as_secs_f64()
    );
}

/// The estate's four Terraform policies plus 16 per-resource rules, a catalog, and a plan of
/// 5,000 resource changes (instances, some of them GPUs, volumes, NAT gateways, buckets).
fn generate_terraform(dir: &Path) -> std::io::Result<()> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/policies/terraform");
    let to = dir.join("policies/terraform");
    std::fs::create_dir_all(to.join("resources"))?;
    for rel in ["data.yaml", "regions.rego", "resources/tags.rego", "resources/buckets.rego", "resources/gpus.rego"] {
        std::fs::copy(from.join(rel), to.join(rel))?;
    }
    for i in 0..16 {
        std::fs::write(
            to.join(format!("resources/rule{i}.rego")),
            format!(
                "package terraform.resources.rule{i}\n\nimport rego.v1\n\ndeny contains msg if {{\n\tinput.change.after.tags.team == \"team-{i}\"\n\tnot input.change.after.tags.owner\n\tmsg := sprintf(\"%s of team-{i} has no owner\", [input.address])\n}}\n"
            ),
        )?;
    }
    std::fs::create_dir_all(dir.join("pricing"))?;
    std::fs::write(
        dir.join("pricing/aws.yaml"),
        "apiVersion: assay.dev/v1alpha1\nkind: PriceCatalog\nmetadata: {name: aws}\nspec:\n  currency: USD\n  regions:\n    eu-west-1:\n      products: {aws.ec2.m5.large: 0.107, aws.ec2.m5.xlarge: 0.214, aws.ec2.g5.xlarge: 1.123, aws.ec2.p5.48xlarge: 108.1, aws.ebs.gp2: 0.11, aws.ebs.gp3: 0.088, aws.nat_gateway: 0.048}\n",
    )?;
    let mut changes = Vec::new();
    // Each of the 100 modules declares its resources as a plan's configuration does, with the
    // references of their unknown attributes (instances launched from the module's template).
    let mut modules: Vec<Vec<serde_json::Value>> = vec![Vec::new(); 100];
    for i in 0..5000 {
        let team = format!("team-{}", i % 20);
        let instance_type = ["m5.large", "g5.xlarge", "p5.48xlarge"][i % 3];
        let mut unknown = serde_json::json!({"id": true});
        let mut expressions = serde_json::json!({"tags": {"references": ["local.tags"]}});
        let (kind, after) = match i % 5 {
            _ if i < 100 => ("aws_launch_template", serde_json::json!({"instance_type": "m5.xlarge"})),
            0 if i % 10 == 0 => {
                unknown = serde_json::json!({"id": true, "launch_template": [{"id": true}]});
                let lt = ["aws_launch_template.r{}.id", "aws_launch_template.r{}"]
                    .map(|r| r.replace("{}", &(i % 100).to_string()));
                expressions["launch_template"] = serde_json::json!([{"id": {"references": lt}}]);
                (
                    "aws_instance",
                    serde_json::json!({"launch_template": [{}], "tags": {"cost-center": "CC-1042", "team": team}}),
                )
            }
            0 | 1 => (
                "aws_instance",
                serde_json::json!({"instance_type": instance_type, "ami": "ami-1", "tags": {"cost-center": "CC-1042", "team": team}, "root_block_device": [{"volume_size": 50, "volume_type": "gp3"}]}),
            ),
            2 => (
                "aws_ebs_volume",
                serde_json::json!({"availability_zone": "eu-west-1a", "size": 100, "type": "gp2", "tags": {"cost-center": "CC-2001", "team": team}}),
            ),
            3 => ("aws_nat_gateway", serde_json::json!({"allocation_id": "eip-1", "tags": {"team": team}})),
            _ => (
                "aws_s3_bucket",
                serde_json::json!({"bucket": format!("b{i}"), "acl": if i % 50 == 4 { "public-read" } else { "private" }, "tags": {"cost-center": "CC-2001", "team": team, "owner": "data"}}),
            ),
        };
        changes.push(serde_json::json!({
            "address": format!("module.m{}.{kind}.r{i}", i % 100), "module_address": format!("module.m{}", i % 100),
            "mode": "managed", "type": kind, "name": format!("r{i}"), "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": unknown}
        }));
        modules[i % 100].push(serde_json::json!({
            "address": format!("{kind}.r{i}"), "mode": "managed", "type": kind, "name": format!("r{i}"),
            "provider_config_key": "aws", "expressions": expressions,
        }));
    }
    let module_calls: serde_json::Map<String, serde_json::Value> = modules
        .into_iter()
        .enumerate()
        .map(|(m, resources)| {
            (format!("m{m}"), serde_json::json!({"source": "./m", "module": {"resources": resources}}))
        })
        .collect();
    let plan = serde_json::json!({
        "format_version": "1.2", "terraform_version": "1.9.8", "planned_values": {"root_module": {}},
        "resource_changes": changes,
        "configuration": {"provider_config": {"aws": {"name": "aws", "expressions": {"region": {"constant_value": "eu-west-1"}}}},
                          "root_module": {"module_calls": module_calls}}
    });
    std::fs::create_dir_all(dir.join("terraform/prod"))?;
    std::fs::write(dir.join("terraform/prod/plan.json"), serde_json::to_vec_pretty(&plan)?)
}

/// `assay check` of a plan with 5,000 resource changes against 20 policies, priced.
fn terraform_5k() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return println!("terraform 5k: cannot make a temp dir: {e}"),
    };
    if let Err(e) = generate_terraform(dir.path()) {
        return println!("terraform 5k: cannot generate the estate: {e}");
    }
    let (times, v) = time_check(dir.path());
    let summary = format!("{}, monthly {}", v["summary"], v["cost"]["monthly"]);
    println!(
        "assay check, a plan of 5,000 resource changes x 20 policies, priced, 5 runs: min {:.2} s, median {:.2} s, max {:.2} s; {summary}",
        times[0].as_secs_f64(),
        times[2].as_secs_f64(),
        times[4].as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "terraform") {
        return terraform_5k();
    }
    if std::env::args().any(|a| a == "rightsize") {
        return rightsize_1k();
    }
    if std::env::args().any(|a| a == "drift" || a == "drift-serve") {
        return drift_10k();
    }
    let library =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/gatekeeper-library/library/general");
    if library.is_dir() {
        gatekeeper_library(&library);
    } else {
        println!("gatekeeper library: {} not found; skipped", library.display());
    }
    check_10k();
    terraform_5k();
    rightsize_1k();
    drift_10k();
}
