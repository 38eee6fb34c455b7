#!/usr/bin/env python3
"""Load benchmark driver: see run.sh. Starts an nginx origin, rempart, nginx
with the ai.robots.txt block and HAProxy with its token list, all on loopback;
runs the same wrk workloads on each, interleaved; measures rps, latency, the
proxy's CPU per request from /proc, and peak RSS; writes a Markdown report
with every ratio taken from this one run."""

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
CLAUDEBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"

ORIGIN_PORT, REMPART_PORT, NGINX_PORT, HAPROXY_PORT, BASELINE_PORT = 18080, 18081, 18082, 18083, 18084

WORKLOADS = [
    # name, description, user agent, path
    ("page", "browser, 12 KB page", CHROME, "/page.html"),
    ("file", "browser, 1 MiB file", CHROME, "/file.bin"),
    ("refused", "AI crawler refused (GPTBot, 403)", GPTBOT, "/page.html"),
    ("offer", "AI crawler, offer (ClaudeBot: rempart 402 offer page, others 403)", CLAUDEBOT, "/page.html"),
]
SETUPS = ["rempart", "nginx", "haproxy"]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def wait_port(port, timeout=15):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except OSError:
        return []


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def status_kb(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n if unit == "ms" else n * 1000


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50": to_ms(lat.get("50", "nan")),
        "p99": to_ms(lat.get("99", "nan")),
        "socket_errors": errors.group(1).strip() if errors else "",
    }


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="rempart-bench-")
        os.chmod(self.tmp, 0o755)
        self.procs = {}
        self.pids = {}

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, name, cmd, core, port):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        proc = subprocess.Popen(["taskset", "-c", str(core)] + cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        try:
            wait_port(port)
        except RuntimeError:
            log.flush()
            with open(log.name) as f:
                sys.stderr.write(f"--- {name} log ---\n{f.read()[-4000:]}\n")
            raise
        time.sleep(0.3)
        self.pids[name] = [proc.pid] + children(proc.pid)

    def setup_origin(self):
        """The origin: nginx serving a 12 KB page and a 1 MiB file."""
        www = os.path.join(self.tmp, "www")
        os.makedirs(www)
        para = "<p>Hiver 1943. Marthe, passeuse dans la vallée de la Clarée, accepte de conduire un enfant seul jusqu'en Italie.</p>\n"
        page = "<!doctype html><html lang=fr><head><meta charset=utf-8><title>La Traversée</title></head><body>\n"
        while len(page.encode()) < 12 * 1024 - 20:
            page += para
        page = page.encode()[: 12 * 1024 - 15] + b"</body></html>\n"
        with open(os.path.join(www, "page.html"), "wb") as f:
            f.write(page)
        with open(os.path.join(www, "file.bin"), "wb") as f:
            f.write(os.urandom(1024 * 1024))
        common = f"user root; worker_processes 1; daemon off; error_log {self.tmp}/%s-error.log warn; pid {self.tmp}/%s.pid;\n" \
                 "events { worker_connections 4096; }\n"
        origin = self.write("origin.conf", common % ("origin", "origin") + f"""
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{ORIGIN_PORT} reuseport backlog=4096; root {www}; }} }}
""")
        self.start("origin", ["nginx", "-c", origin], 0, ORIGIN_PORT)
        return www

    def setup(self):
        common = f"user root; worker_processes 1; daemon off; error_log {self.tmp}/%s-error.log warn; pid {self.tmp}/%s.pid;\n" \
                 "events { worker_connections 4096; }\n"
        self.setup_origin()
        block = os.path.join(HERE, "nginx-block-ai-bots.conf")
        nginx = self.write("nginx.conf", common % ("nginx", "nginx") + f"""
http {{ access_log off; keepalive_requests 100000;
  upstream origin {{ server 127.0.0.1:{ORIGIN_PORT}; keepalive 128; }}
  server {{ listen 127.0.0.1:{NGINX_PORT} backlog=4096;
    include {block};
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on; }} }} }}
""")
        tokens = os.path.join(HERE, "haproxy-block-ai-bots.txt")
        haproxy = self.write("haproxy.cfg", f"""
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:{HAPROXY_PORT}
  acl ai_robot hdr_sub(user-agent) -i -f {tokens}
  http-request deny deny_status 403 if ai_robot !{{ path /robots.txt }}
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:{ORIGIN_PORT} maxconn 1000
""")
        self.start("rempart", [self.args.rempart, "run", "--config", os.path.join(HERE, "rempart-bench.toml")], 1, REMPART_PORT)
        self.idle_rss_kb = status_kb(self.pids["rempart"], "VmRSS")
        if getattr(self.args, "baseline", None):
            # Another rempart build (an earlier commit), same config on other ports, same run.
            text = open(os.path.join(HERE, "rempart-bench.toml")).read()
            text = (text.replace(f"127.0.0.1:{REMPART_PORT}", f"127.0.0.1:{BASELINE_PORT}")
                        .replace("127.0.0.1:18091", "127.0.0.1:18094")
                        .replace("/tmp/rempart-bench.", "/tmp/rempart-baseline.")
                        .replace("/tmp/rempart-bench-", "/tmp/rempart-baseline-")
                        .replace('"../../config/', f'"{self.args.baseline_root or ROOT}/config/'))
            cfg = self.write("baseline.toml", text)
            self.start("baseline", [self.args.baseline, "run", "--config", cfg], 1, BASELINE_PORT)
        self.start("nginx", ["nginx", "-c", nginx], 1, NGINX_PORT)
        self.start("haproxy", ["haproxy", "-db", "-f", haproxy], 1, HAPROXY_PORT)

    def port(self, setup):
        return {"rempart": REMPART_PORT, "baseline": BASELINE_PORT, "nginx": NGINX_PORT, "haproxy": HAPROXY_PORT}[setup]

    def check(self):
        """Every setup answers each workload as expected before measuring."""
        import urllib.request
        import urllib.error
        expect = {("page", s): 200 for s in SETUPS}
        expect.update({("file", s): 200 for s in SETUPS})
        expect.update({("refused", s): 403 for s in SETUPS})
        expect.update({("offer", "rempart"): 402, ("offer", "nginx"): 403, ("offer", "haproxy"): 403})
        expect.update({(w[0], "baseline"): expect[(w[0], "rempart")] for w in WORKLOADS})
        for name, _, ua, path in WORKLOADS:
            for setup in SETUPS:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port(setup)}{path}", headers={"User-Agent": ua})
                try:
                    status = urllib.request.urlopen(req, timeout=5).status
                except urllib.error.HTTPError as e:
                    status = e.code
                if status != expect[(name, setup)]:
                    raise RuntimeError(f"{setup} answered {status} to workload {name}, expected {expect[(name, setup)]}")

    def measure(self, setup, ua, path):
        pids = self.pids[setup]
        before = cpu_ticks(pids)
        cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{self.args.connections}", f"-d{self.args.duration}s", "--latency",
               "-H", f"User-Agent: {ua}", f"http://127.0.0.1:{self.port(setup)}{path}"]
        out = run(cmd).stdout
        ticks = cpu_ticks(pids) - before
        r = parse_wrk(out)
        r["cpu_us"] = ticks * 1e6 / CLK_TCK / max(r["requests"], 1)
        return r

    def stop(self):
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)
        # The ledger of millions of refusals is not worth keeping.
        shutil.rmtree("/tmp/rempart-bench-evidence", ignore_errors=True)
        shutil.rmtree("/tmp/rempart-baseline-evidence", ignore_errors=True)


def fmt_ratio(a, b):
    return "–" if not b or b != b else f"{a / b:.2f}"


def run_criterion(bench):
    """Runs one criterion benchmark briefly and returns what it printed."""
    out = subprocess.run(["cargo", "bench", "--locked", "--bench", bench, "--", "--warm-up-time", "1",
                          "--measurement-time", "3", "--noplot"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout


def to_ns(value, unit):
    return float(value) * {"ns": 1, "µs": 1000, "us": 1000, "ms": 1e6}[unit]


def criterion_section(smoke):
    if smoke:
        return ""
    text = run_criterion("decision")
    # Allocation counts, per group: the lines after "allocations per request (GROUP):".
    allocs = {}
    for group, block in re.findall(r"^allocations per request \((\S+)\):\n((?:\s{2}\S+\s+[\d.]+\n)+)", text, re.M):
        for kind, n in re.findall(r"^\s{2}(\S+)\s+([\d.]+)$", block, re.M):
            allocs[(group, kind)] = n
    times = re.findall(r"^(decision(?:-behaviour)?)/(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M)
    per = {"browser": 3, "ai-crawler": 3, "search-engine": 2, "tool": 2, "mix": 10}
    lines = ["## Decision path (criterion)", "",
             "`cargo bench --bench decision`: the canonical request read from the head (`Request::read`), then "
             "`rempart::decide::decide` — the one decision function of the proxy and `classify`: identity, own "
             "documents, policy, licence and payment steps, the answer — against the full shipped catalogue and all "
             "24 range files. `decision`: behaviour off; `decision-behaviour`: the shipped behaviour on, browsers "
             "from a crowd of 4,096 addresses, crawlers from their own. Median time per request (criterion's "
             "estimate for a batch, divided by the requests in the batch) and heap allocations per request "
             "(counting allocator).", "",
             "| group | kind | requests in batch | ns per request | allocations per request |", "|---|---|---|---|---|"]
    for group, kind, value, unit in times:
        ns = to_ns(value, unit)
        n = per.get(kind, 1)
        lines.append(f"| {group} | {kind} | {n} | {ns / n:.0f} | {allocs.get((group, kind), '?')} |")
    return "\n".join(lines) + "\n"


def behaviour_section(smoke):
    if smoke:
        return ""
    text = run_criterion("behaviour")
    mem = re.findall(r"^memory, (.+?): (.+)$", text, re.M)
    times = re.findall(r"^behaviour/(.+?)\n\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M)
    lines = ["## Behaviour stage (criterion)", "",
             "`cargo bench --bench behaviour`: one update of the per-client state (IP + user agent, IP, /24 or /64) "
             "and the signals it gives, with the shipped defaults. Median time per request.", "",
             "| case | ns per request |", "|---|---|"]
    for case, value, unit in times:
        lines.append(f"| {case} | {to_ns(value, unit):.0f} |")
    lines += ["", "Memory with 1,000,000 distinct clients in a tracker sized for 1,000,000 (resident memory added, "
              "divided by the clients; the bound in the issue is 256 bytes):", ""]
    for label, desc in mem:
        lines.append(f"- {label}: {desc}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rempart", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--output", default=None)
    ap.add_argument("--baseline", default=None, help="another rempart binary measured in the same run")
    ap.add_argument("--baseline-root", default=None, help="the checkout whose config/ the baseline reads")
    args = ap.parse_args()
    global SETUPS
    if args.baseline:
        SETUPS = ["rempart", "baseline", "nginx", "haproxy"]
    if args.smoke:
        args.rounds, args.duration = 1, 1
    output = args.output or (os.path.join(tempfile.gettempdir(), "rempart-benchmarks-smoke.md") if args.smoke
                             else os.path.join(ROOT, "docs", "benchmarks.md"))

    bench = Bench(args)
    results = {(w[0], s): [] for w in WORKLOADS for s in SETUPS}
    try:
        bench.setup()
        bench.check()
        for rnd in range(args.rounds):
            for name, _, ua, path in WORKLOADS:
                for setup in SETUPS:
                    r = bench.measure(setup, ua, path)
                    results[(name, setup)].append(r)
                    print(f"round {rnd + 1} {name:8} {setup:8} {r['rps']:>10.0f} rps  p99 {r['p99']:.2f} ms  "
                          f"cpu {r['cpu_us']:.1f} us/req", flush=True)
        peak = {s: status_kb(bench.pids[s], "VmHWM") for s in SETUPS}
        idle = bench.idle_rss_kb
    finally:
        bench.stop()

    def med(name, setup, key):
        return statistics.median(r[key] for r in results[(name, setup)])

    cpu = run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).stdout.strip()
    versions = {
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1],
        "haproxy": run(["haproxy", "-v"]).stdout.split()[2],
        "wrk": "wrk " + (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1:2] or ["?"])[0],
    }
    lines = [
        "# Benchmarks", "",
        "Generated by `benches/load/run.sh` (load), `cargo bench --bench decision` (decision path) and "
        "`cargo bench --bench behaviour` (behaviour stage) "
        f"on {time.strftime('%Y-%m-%d')}. Every ratio below comes from this one run. "
        "Targets, profiles and what was tried: [performance.md](performance.md).", "",
        "## Machine", "",
        f"- CPU: {cpu}, {os.cpu_count()} cores; kernel {platform.release()}",
        f"- nginx {versions['nginx']}, HAProxy {versions['haproxy']}, {versions['wrk']}",
        f"- rempart binary: `{args.rempart}`",
    ]
    if args.baseline:
        lines += [f"- baseline: another rempart build (`--baseline`), measured in the same interleaved run with the "
                  "same configuration on other ports, reading its own checkout's `config/`"]
    lines += [
        "",
        "## Load", "",
        f"Command: `benches/load/run.sh{' --smoke' if args.smoke else ''}` — {args.rounds} interleaved rounds "
        f"(rempart, nginx, HAProxy, then the next workload), `wrk -t1 -c{args.connections} -d{args.duration}s`, "
        "medians over the rounds. The origin (nginx, static files) and wrk are pinned to core 0, the proxy "
        "under test to core 1 (rempart `threads = 1`, nginx `worker_processes 1`, HAProxy `nbthread 1`). "
        "CPU µs per request is the proxy's user+system time from /proc divided by the requests served. "
        "nginx runs the ai.robots.txt `nginx-block-ai-bots.conf` (a regex over the user agent), HAProxy its "
        "token list with `hdr_sub -i`, rempart `benches/load/rempart-bench.toml` (full catalogue, range "
        "verification, ordered policy).", "",
    ]
    for name, desc, _, _ in WORKLOADS:
        lines += [f"### {desc}", "",
                  "| setup | rps | p50 ms | p99 ms | CPU µs/req | rps vs nginx | rps vs HAProxy | CPU vs nginx | CPU vs HAProxy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for setup in SETUPS:
            rps, p50, p99, c = (med(name, setup, k) for k in ("rps", "p50", "p99", "cpu_us"))
            lines.append(
                f"| {setup} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {c:.1f} | "
                f"{fmt_ratio(rps, med(name, 'nginx', 'rps'))} | {fmt_ratio(rps, med(name, 'haproxy', 'rps'))} | "
                f"{fmt_ratio(c, med(name, 'nginx', 'cpu_us'))} | {fmt_ratio(c, med(name, 'haproxy', 'cpu_us'))} |")
        lines.append("")
    lines += ["### Memory", "",
              "| setup | peak RSS under load (MiB) |", "|---|---|"]
    for setup in SETUPS:
        lines.append(f"| {setup} | {peak[setup] / 1024:.1f} |")
    lines += ["", f"rempart idle RSS with the full catalogue and range table, before load: {idle / 1024:.1f} MiB.", ""]
    for section in (criterion_section(args.smoke), behaviour_section(args.smoke)):
        if section:
            lines += [section]
    with open(output, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {output}")


if __name__ == "__main__":
    sys.exit(main())
