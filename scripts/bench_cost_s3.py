"""Billing store on object storage beside local disk, and on a Ballista cluster: the billing
benchmark's five queries.

Usage: python3 scripts/bench_cost_s3.py ASSAY_BINARY WORKDIR [--days 365] [--resources 3] [--runs 5]
       [--executors 2]

Starts moto's S3-compatible server (the Python of this script must have `moto[server]`, as the
test virtual environment has), generates FOCUS CSV with `assay cost generate`, ingests it into a
local directory and into s3://bench/focus (both timed), checks that the five queries of
scripts/bench_cost.py give the same answers from both, and prints a Markdown table of median
times. Every query is an `assay cost query` command (process start and object listing included).
moto is a Python server on the same machine: it stands for the protocol, not for S3's speed.
With --executors N (N > 0), it also starts `assay cost cluster scheduler` and N executors on
loopback and runs each query over the bucket with `--cluster`.
"""

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from bench_net import free_port, wait_for


def node(assay, env, args):
    return subprocess.Popen([assay, "cost", "cluster", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(cmd, env):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])}…: {out.stderr}")
    return elapsed, out.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("assay")
    p.add_argument("workdir")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--resources", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--executors", type=int, default=2)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    os.chdir(a.workdir)
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nodes = [moto]
    try:
        wait_for(port)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT")).read()
        env = dict(
            os.environ,
            AWS_ENDPOINT=f"http://127.0.0.1:{port}",
            AWS_ALLOW_HTTP="true",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
        )
        if not glob.glob("gen/*.csv"):
            subprocess.run(
                [a.assay, "cost", "generate", "--days", str(a.days), "--resources", str(a.resources), "--out", "gen"],
                check=True,
                capture_output=True,
            )
        files = sorted(glob.glob("gen/*.csv"))
        rows = sum(sum(1 for _ in open(f)) - 1 for f in files)
        stores = {"local disk": ["--data", "local"], "S3 (moto)": ["--data", "s3://bench/focus"]}
        ingest = {}
        for name, data in stores.items():
            ingest[name], _ = timed([a.assay, "cost", *data, "ingest", *files], env)
        if a.executors > 0:
            scheduler = free_port()
            nodes.append(node(a.assay, env, ["scheduler", "--addr", f"127.0.0.1:{scheduler}"]))
            wait_for(scheduler)
            for _ in range(a.executors):
                flight, grpc = free_port(), free_port()
                nodes.append(node(a.assay, env, ["executor", "--scheduler", f"127.0.0.1:{scheduler}",
                                                 "--addr", f"127.0.0.1:{flight}", "--grpc-port", str(grpc)]))
                wait_for(flight)
                wait_for(grpc)
            name = f"S3 on Ballista ({a.executors} executors)"
            stores[name] = ["--data", "s3://bench/focus", "--cluster", f"df://127.0.0.1:{scheduler}"]
        _, out = timed(
            [a.assay, "cost", "--data", "local", "query",
             "SELECT date_trunc('month', max(ChargePeriodStart)) FROM focus", "--format", "csv"],
            env,
        )
        month_start = out.splitlines()[1][:10]
        queries = {
            "total": "SELECT SUM(EffectiveCost) FROM focus",
            "day x service x account": "SELECT date_trunc('day', ChargePeriodStart) AS day, ServiceName, "
            "BillingAccountId, SUM(EffectiveCost) AS cost FROM focus GROUP BY 1, 2, 3",
            "top-20 resources": "SELECT ResourceId, SUM(EffectiveCost) AS cost FROM focus GROUP BY 1 "
            "ORDER BY cost DESC LIMIT 20",
            "month to date by cost center, one team": "SELECT Tags['cost-center'] AS CostCenter, "
            f"SUM(EffectiveCost) AS Cost FROM focus WHERE ChargePeriodStart >= '{month_start}' AND "
            "Tags['team'] = 'research' GROUP BY 1 ORDER BY Cost DESC",
            "commitment discount utilisation": "SELECT CommitmentDiscountId, SUM(CASE WHEN "
            "CommitmentDiscountStatus = 'Used' THEN EffectiveCost ELSE 0 END) / SUM(EffectiveCost) AS "
            "Utilization, SUM(EffectiveCost) AS Cost FROM focus WHERE CommitmentDiscountId IS NOT NULL "
            "GROUP BY CommitmentDiscountId",
        }
        print(f"{rows:,} rows in {len(files)} files; {a.runs} runs each, medians\n")
        print("| | " + " | ".join(stores) + " |")
        print("|---|" + "---|" * len(stores))
        print("| ingest (s) | " + " | ".join(f"{ingest[n]:.2f}" if n in ingest else "" for n in stores) + " |")
        for qname, sql in queries.items():
            medians, answers = [], []
            for data in stores.values():
                times = []
                for _ in range(a.runs):
                    t, out = timed([a.assay, "cost", *data, "query", sql, "--format", "csv"], env)
                    times.append(t)
                medians.append(statistics.median(times))
                answers.append(sorted(out.splitlines()))
            if any(answer != answers[0] for answer in answers[1:]):
                sys.exit(f"{qname}: the answers differ")
            print(f"| {qname} (s) | " + " | ".join(f"{m:.3f}" for m in medians) + " |")
        print("\nEvery query gave the same answer everywhere.")
    finally:
        for n in nodes:
            n.terminate()
            n.wait()


if __name__ == "__main__":
    main()
