#!/usr/bin/env python3
"""Soak test: rempart with the shipped policy in front of an nginx origin for
a long run at half its measured maximum, with a mix of browsers (from many
addresses, through X-Forwarded-For from the trusted load generator),
refused and offered AI crawlers, a licensed crawler, and slow clients that
trickle their headers. Reports, minute by minute, throughput, p99 latency and
the proxy's resident memory; passes when RSS grows by at most 5 % and every
minute's p99 stays within 20 % of the first minute's. See benches/soak.sh."""

import argparse
import os
import re
import urllib.request
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "load"))
import bench  # noqa: E402  (the load benchmark's helpers: origin, wrk parsing, /proc)

PORT, ADMIN = 18181, 18191
TOKEN = "soak-licence-token"

LUA = r"""
-- A mix of clients, paced to a target rate per connection.
local chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
local gptbot = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
local claude = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"
local reqs = {}
local n = 0
for i = 1, 16384 do
  local ip = string.format("198.18.%d.%d", math.floor(i / 256) % 256, i % 256)
  local kind = i % 10
  local h = { ["Host"] = "catalogue.example", ["X-Forwarded-For"] = ip,
              ["Accept"] = "text/html", ["Accept-Language"] = "fr-FR,fr;q=0.9" }
  -- People load a page's assets with it (a header set that only fetches
  -- pages from many addresses is a fleet: rempart's fingerprint-spike).
  if kind < 4 then
    h["User-Agent"] = chrome
    reqs[#reqs + 1] = wrk.format("GET", "/page.html", h)
  elseif kind < 7 then
    h["User-Agent"] = chrome
    reqs[#reqs + 1] = wrk.format("GET", "/file.css", h)
  elseif kind == 7 then
    h["User-Agent"] = gptbot
    reqs[#reqs + 1] = wrk.format("GET", "/page.html", h)
  elseif kind == 8 then
    h["User-Agent"] = claude
    reqs[#reqs + 1] = wrk.format("GET", "/page.html", h)
  else
    h["User-Agent"] = gptbot
    h["Authorization"] = "License %TOKEN%"
    reqs[#reqs + 1] = wrk.format("GET", "/page.html", h)
  end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
-- Each connection waits a random time (uniform, mean %DELAY% ms) before its
-- next request: independent clients, not 64 in lockstep. A fixed pause keeps
-- the connections that wrk opens together in step, so requests arrive in
-- clumps whose size, and so the p99, depends on how they happen to line up.
local pause = %DELAY%
math.randomseed(os.time())
delay = function()
  return math.random(0, 2 * pause)
end
"""


def config(tmp):
    shipped = open(os.path.join(bench.ROOT, "config", "rempart.toml")).read()
    rules = shipped[shipped.index("[reservation]"):shipped.index("[evidence]")]
    cfg = os.path.join(bench.ROOT, "config")
    import hashlib
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    text = f"""[server]
listen = "127.0.0.1:{PORT}"
upstream = "http://127.0.0.1:{bench.ORIGIN_PORT}"
threads = 1
trusted_proxies = ["127.0.0.1/32"]
pid_file = "{tmp}/soak.pid"
upgrade_sock = "{tmp}/soak.sock"
header_timeout_ms = 10000

[admin]
listen = "127.0.0.1:{ADMIN}"

[catalog]
agents = ["{cfg}/agents/ai-robots.toml", "{cfg}/agents/curated.toml"]
ranges_dir = "{cfg}/ipranges"

[rights_holder]
name = "Soak SAS"
contact = "licences@soak.example"
terms_url = "https://soak.example/terms"

[responses]
templates_dir = "{cfg}/templates"

{rules}
[evidence]
dir = "{tmp}/evidence"
ip_key_file = "{tmp}/ip-key"

[ranges]
refresh = false

[rdns]
enabled = false

[reload]
watch = false

[[licensees]]
id = "soak-ai"
name = "Soak AI"
agents = ["GPTBot"]
token_sha256 = ["{digest}"]
"""
    path = os.path.join(tmp, "soak.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def slow_clients(stop, count):
    """Connections that send a header line every 2 s and are cut by the
    header deadline, over and over."""
    def one():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
                s.sendall(b"GET /page.html HTTP/1.1\r\nHost: catalogue.example\r\n")
                for i in range(20):
                    if stop.wait(2):
                        break
                    s.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except OSError:
                pass
            finally:
                try:
                    s.close()
                except Exception:
                    pass
    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def core_ticks(core):
    """The core's (busy, steal) ticks from /proc/stat: steal is time the
    machine under this one gave to someone else while we wanted the core."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return v[0] + v[1] + v[2] + v[5] + v[6], v[7]
    return 0, 0


def involuntary_switches(pids):
    """How often the proxy's threads were taken off the core against their will."""
    return bench.status_kb(pids, "nonvoluntary_ctxt_switches")


def wrk(script, seconds, connections):
    done = bench.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                      "-s", script, f"http://127.0.0.1:{PORT}/"])
    if done.stderr.strip():
        # wrk runs its default request when the script does not load: never measure that.
        raise RuntimeError(f"wrk: {done.stderr.strip()}")
    return bench.parse_wrk(done.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rempart", required=True)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--slice", type=int, default=60, help="seconds per measured slice")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--slow", type=int, default=50, help="slow clients")
    ap.add_argument("--output", default=None)
    ap.add_argument("--no-evidence", action="store_true",
                    help="turn the evidence ledger off (to see what it costs the tail)")
    args = ap.parse_args()

    b = bench.Bench(argparse.Namespace(rempart=args.rempart, connections=args.connections, duration=10))
    stop = threading.Event()
    try:
        # The load benchmark's origin (nginx, a 12 KB page), and a stylesheet.
        www = b.setup_origin()
        with open(os.path.join(www, "file.css"), "w") as f:
            f.write("body{margin:0}\n" * 100)
        cfg = config(b.tmp)
        if args.no_evidence:
            text = open(cfg).read().replace("[evidence]\n", "[evidence]\nenabled = false\n", 1)
            with open(cfg, "w") as f:
                f.write(text)
        b.start("rempart", [args.rempart, "run", "--config", cfg], 1, PORT)
        pids = b.pids["rempart"]
        script = os.path.join(b.tmp, "mix.lua")

        def write_script(delay_ms):
            with open(script, "w") as f:
                f.write(LUA.replace("%TOKEN%", TOKEN).replace("%DELAY%", str(delay_ms)))

        # The maximum with this mix, unpaced.
        write_script(0)
        peak = wrk(script, 10, args.connections)["rps"]
        target = peak / 2
        delay = max(1, int(args.connections * 1000 / target))
        write_script(delay)
        print(f"maximum {peak:,.0f} rps; soak at half: {target:,.0f} rps "
              f"({args.connections} connections, {delay} ms between requests on each)")
        slow_clients(stop, args.slow)
        wrk(script, 20, args.connections)  # warm-up: caches, pools, behaviour state
        rows = []
        for minute in range(args.minutes):
            before = bench.cpu_ticks(pids)
            busy0, steal0 = core_ticks(1)
            switches0 = involuntary_switches(pids)
            r = wrk(script, args.slice, args.connections)
            r["cpu_us"] = (bench.cpu_ticks(pids) - before) * 1e6 / bench.CLK_TCK / max(r["requests"], 1)
            busy1, steal1 = core_ticks(1)
            r["core_busy"] = (busy1 - busy0) * 100 / bench.CLK_TCK / args.slice
            r["steal"] = (steal1 - steal0) * 100 / bench.CLK_TCK / args.slice
            r["switches"] = (involuntary_switches(pids) - switches0) / args.slice
            r["rss_mb"] = bench.status_kb(pids, "VmRSS") / 1024
            rows.append(r)
            print(f"minute {minute + 1}: {r['rps']:,.0f} rps, p99 {r['p99']:.2f} ms, "
                  f"CPU {r['cpu_us']:.1f} µs/req, proxy core busy {r['core_busy']:.1f} % steal {r['steal']:.2f} %, "
                  f"{r['switches']:.0f} involuntary switches/s, "
                  f"RSS {r['rss_mb']:.1f} MiB, {r['socket_errors'] or 'no socket errors'}", flush=True)
        stop.set()
        # The soak measures what it means to: people served, crawlers offered.
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5).read().decode()
        actions = {}
        for line in metrics.splitlines():
            m = re.match(r'rempart_requests_total\{action="([a-z]+)"[^}]*\} (\S+)', line)
            if m:
                actions[m.group(1)] = actions.get(m.group(1), 0) + float(m.group(2))
        print(f"answers over the soak: {actions}")
        wrong = {a: n for a, n in actions.items() if a not in ("allow", "offer") and n > 0}
        if wrong:
            raise RuntimeError(f"the soak's clients were not answered as intended: {wrong}")
        first, last = rows[0], rows[-1]
        growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"] * 100
        worst = max(r["p99"] for r in rows)
        p99_drift = (worst - first["p99"]) / first["p99"] * 100
        ok = growth <= 5 and p99_drift <= 20

        def correlation(xs, ys):
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
            sxx = sum((x - mx) ** 2 for x in xs) ** 0.5
            syy = sum((y - my) ** 2 for y in ys) ** 0.5
            return sxy / (sxx * syy) if sxx and syy else 0.0
        steal = [r["steal"] for r in rows]
        r_cpu = correlation(steal, [r["cpu_us"] for r in rows])
        r_p99 = correlation(steal, [r["p99"] for r in rows])
        lines = [
            "## Soak", "",
            f"`benches/soak.sh`: {args.minutes} minutes ({args.slice} s slices) with the shipped policy, "
            f"{args.connections} connections paced to half the measured maximum ({peak:,.0f} rps → "
            f"{target:,.0f} rps; each connection waits a random 0–{2 * delay} ms between requests, so that "
            "the connections do not move in step), 16,384 client addresses through `X-Forwarded-For` from the trusted load "
            "generator; the mix: 40 % browser pages, 30 % their assets, 10 % GPTBot (offer), 10 % ClaudeBot (offer), "
            f"10 % a licensed crawler; and {args.slow} slow clients trickling a header line every 2 s (each cut "
            "by the 10 s header deadline, then again). Proxy on one core, wrk and the origin on the other.", "",
            "| minute | rps | p99 ms | CPU µs/req | core steal % | involuntary switches/s | RSS MiB |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(rows):
            lines.append(f"| {i + 1} | {r['rps']:,.0f} | {r['p99']:.2f} | {r['cpu_us']:.1f} | {r['steal']:.2f} "
                         f"| {r['switches']:.0f} | {r['rss_mb']:.1f} |")
        lines += ["", f"RSS growth first → last minute: {growth:+.1f} % (bound: ≤ 5 %). "
                      f"Worst p99 against the first minute's: {p99_drift:+.1f} % (bound: ≤ 20 %). "
                      f"{'Both bounds hold.' if ok else 'A bound is NOT met.'}",
                  "", f"Correlation, minute by minute, of the proxy core's steal time (what the machine under this "
                      f"one took) with the CPU per request: {r_cpu:+.2f}; with the p99: {r_p99:+.2f}.", ""]
        text = "\n".join(lines)
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        return 0 if ok else 1
    finally:
        stop.set()
        b.stop()


if __name__ == "__main__":
    sys.exit(main())
