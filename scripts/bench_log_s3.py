"""An auditor's `assay log verify s3://…` on a ledger of N entries, with every answer of the S3
server held back by a fixed delay, as a bucket a region away adds a round trip per request.

Usage: python3 scripts/bench_log_s3.py ASSAY_BINARY WORKDIR [--entries 100000] [--delay-ms 20]
       [--runs 3] [--peer OTHER_ASSAY_BINARY]

Starts moto's S3-compatible server (the Python of this script must have `moto[server]` and
boto3, as the test virtual environment has) behind a TCP proxy that delays every chunk the server
sends by --delay-ms. Builds a ledger of --entries decision-sized entries on local disk with
`assay log init` and `assay log append --lines`, copies it into s3://bench/ledger (around the
proxy), and prints a Markdown table of median times of `assay log verify` from local disk and
from the bucket through the proxy, for ASSAY_BINARY and, with --peer, another build (an earlier
release, to compare). Each run checks that verification succeeded.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

from bench_net import free_port, wait_for


def delaying_proxy(listen, upstream, delay):
    """Forwards connections on `listen` to `upstream`; what upstream sends reaches the client
    `delay` seconds after it arrived (in order), what the client sends goes at once."""

    async def pipe(reader, writer, hold):
        queue = asyncio.Queue()

        async def deliver():
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                await queue.put((time.monotonic() + hold, data))
        except ConnectionError:
            pass
        await queue.put(None)
        await sender

    async def serve(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer, 0.0), pipe(up_reader, client_writer, delay),
                             return_exceptions=True)

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    wait_for(listen)


def timed(cmd, env):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])}…: {out.stdout}{out.stderr}")
    return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("assay")
    p.add_argument("workdir")
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--peer")
    a = p.parse_args()
    assays = [("this build", os.path.abspath(a.assay))]
    if a.peer:
        assays.append(("peer", os.path.abspath(a.peer)))
    os.makedirs(a.workdir, exist_ok=True)
    os.chdir(a.workdir)
    port, proxy = free_port(), free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT")).read()
        delaying_proxy(proxy, port, a.delay_ms / 1000)
        env = dict(os.environ, AWS_ENDPOINT=f"http://127.0.0.1:{proxy}", AWS_ALLOW_HTTP="true",
                   AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
        assay = assays[0][1]
        if not os.path.exists("ledger/checkpoint"):
            subprocess.run([assay, "log", "keygen", "bench.example/ledger", "--private", "k", "--public", "k.pub"],
                           check=True, capture_output=True)
            subprocess.run([assay, "log", "init", "ledger", "--key", "k"], check=True, capture_output=True)
            # Entries about the size of a decision record.
            lines = "".join(f'{{"kind":"admission","n":{i},"allowed":true,"pad":"{"x" * 300}"}}\n'
                            for i in range(a.entries))
            subprocess.run([assay, "log", "append", "ledger", "--key", "k", "--lines", "-"], input=lines,
                           text=True, check=True, capture_output=True)
        import boto3
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
        objects = 0
        for root, _, files in os.walk("ledger"):
            for f in files:
                if f.startswith("."):
                    continue
                path = os.path.join(root, f)
                s3.upload_file(path, "bench", path)
                objects += 1
        rows = []
        for name, binary in assays:
            local = [timed([binary, "log", "verify", "ledger", "--key", "k.pub"], env) for _ in range(a.runs)]
            remote = [timed([binary, "log", "verify", "s3://bench/ledger", "--key", "k.pub"], env)
                      for _ in range(a.runs)]
            rows.append((name, statistics.median(local), statistics.median(remote)))
        print(f"{a.entries} entries, {objects} objects, {a.delay_ms:g} ms added to every answer; "
              f"medians of {a.runs} runs\n")
        print("| build | verify from local disk | verify from S3 (moto + delay) |")
        print("|---|---|---|")
        for name, local, remote in rows:
            print(f"| {name} | {local:.2f} s | {remote:.2f} s |")
    finally:
        moto.kill()


if __name__ == "__main__":
    main()
