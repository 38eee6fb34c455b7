"""The load model of the benchmark: a crowd behind a CDN.

Every request names its client in `X-Forwarded-For`, one of 65,536 addresses
of the benchmarking block 198.18.0.0/15 (RFC 2544), 128 in each of its 512
/24s. The requests are built once, in Python as bytes and in the wrk Lua
script as the same strings (`wrk.lua`), so that wrk only hands out pre-built
requests and measures.

Why a crowd and not one identical request: the shipped policy rate-limits one
client that sends thousands of pages a second, and it flags one header
fingerprint that fetches pages far above its baseline with few assets
(`fingerprint-spike`), whatever the address. A benchmark that sends one
header set 30,000 times a second is, by that definition, a fleet. So the
browser workload is what a crowd sends: each address loads the page with its
stylesheet, script and image, with one of a few dozen browser header sets
(Chrome, Firefox and Safari versions and platforms, each with several
Accept-Language values), headers as those browsers send them over plain HTTP
and in their order. The crawler and file workloads come from the same
addresses, with one header set each (a crawler has one HTTP stack)."""

import json

CLIENTS = 65_536
HOST = "catalogue-demo.example"

CHROME_PAGE = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
               "application/signed-exchange;v=b3;q=0.7")
CHROME_IMG = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FIREFOX_IMG = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
SAFARI_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SAFARI_IMG = ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
              "image/svg+xml,image/*;q=0.8,*/*;q=0.5")

CHROME_UAS = [
    f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
    for v in (129, 130, 131)
    for platform in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64")
]
FIREFOX_UAS = [
    f"Mozilla/5.0 ({platform}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
    for v in (132, 133)
    for platform in ("Windows NT 10.0; Win64; x64", "X11; Linux x86_64")
]
SAFARI_UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
]
LANGUAGES = ["fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr-FR,fr;q=0.9", "en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8"]

GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
CLAUDEBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"

# What a page loads after it (the origin serves these files).
ASSETS = [("/style.css", "css"), ("/app.js", "js"), ("/logo.png", "img")]


def chrome(ua, lang, kind, path):
    """Chrome over plain HTTP: no client hints, no Sec-Fetch-*, gzip and deflate only."""
    accept = {"page": CHROME_PAGE, "css": "text/css,*/*;q=0.1", "js": "*/*", "img": CHROME_IMG}[kind]
    h = [("Host", HOST), ("Connection", "keep-alive")]
    if kind == "page":
        h.append(("Upgrade-Insecure-Requests", "1"))
    h += [("User-Agent", ua), ("Accept", accept)]
    if kind != "page":
        h.append(("Referer", f"http://{HOST}/page.html"))
    h += [("Accept-Encoding", "gzip, deflate"), ("Accept-Language", lang)]
    return path, h


def firefox(ua, lang, kind, path):
    accept = {"page": FIREFOX_PAGE, "css": "text/css,*/*;q=0.1", "js": "*/*", "img": FIREFOX_IMG}[kind]
    h = [("Host", HOST), ("User-Agent", ua), ("Accept", accept), ("Accept-Language", lang),
         ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive")]
    if kind == "page":
        h += [("Upgrade-Insecure-Requests", "1"), ("Priority", "u=0, i")]
    else:
        h += [("Referer", f"http://{HOST}/page.html")]
    return path, h


def safari(ua, lang, kind, path):
    accept = {"page": SAFARI_PAGE, "css": "text/css,*/*;q=0.1", "js": "*/*", "img": SAFARI_IMG}[kind]
    h = [("Host", HOST)]
    if kind == "page":
        h.append(("Upgrade-Insecure-Requests", "1"))
    h += [("Accept", accept), ("User-Agent", ua)]
    if kind != "page":
        h.append(("Referer", f"http://{HOST}/page.html"))
    h += [("Accept-Language", lang), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive")]
    return path, h


def browser_sets():
    """The crowd's header sets: (family, ua, language), a few dozen."""
    sets = []
    for family, uas in ((chrome, CHROME_UAS), (firefox, FIREFOX_UAS), (safari, SAFARI_UAS)):
        for i, ua in enumerate(uas):
            # Each user agent with three of the four languages: 48 sets.
            for j in range(3):
                sets.append((family, ua, LANGUAGES[(i + j) % len(LANGUAGES)]))
    return sets


def crawler(ua, path):
    return path, [("Host", HOST), ("User-Agent", ua), ("Accept", "*/*"), ("Accept-Encoding", "gzip, br"),
                  ("Connection", "keep-alive")]


def head(path, headers):
    """The request up to and including `X-Forwarded-For: ` (the address and
    the blank line follow)."""
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers] + ["X-Forwarded-For: "]
    return "\r\n".join(lines)


def groups(workload):
    """The workload's request groups: each group is what one client sends,
    as a list of request heads. Client i uses group i mod len(groups)."""
    if workload == "page":
        out = []
        for family, ua, lang in browser_sets():
            reqs = [head(*family(ua, lang, "page", "/page.html"))]
            reqs += [head(*family(ua, lang, kind, path)) for path, kind in ASSETS]
            out.append(reqs)
        return out
    if workload == "file":
        family, ua, lang = browser_sets()[0]
        return [[head(*family(ua, lang, "page", "/file.bin"))]]
    ua = {"gptbot": GPTBOT, "claudebot": CLAUDEBOT}[workload]
    return [[head(*crawler(ua, "/page.html"))]]


def address(i):
    """Client i's address: /24 number i mod 512 of 198.18.0.0/15, host i div 512 + 1."""
    s = i % 512
    return f"198.{18 + s // 256}.{s % 256}.{i // 512 + 1}"


def request(workload, i, k=0):
    """The bytes of client i's k-th request, as the Lua script builds them."""
    g = groups(workload)
    return (g[i % len(g)][k] + address(i) + "\r\n\r\n").encode()


def describe():
    n = len(browser_sets())
    return (f"{CLIENTS:,} client addresses in `X-Forwarded-For` (198.18.0.0/15, 128 in each of its 512 /24s), "
            f"the load generator being the trusted CDN. Browser workload: each address loads the 12 KB page, then "
            f"its stylesheet (8 KB), script (16 KB) and image (4 KB), with one of {n} browser header sets "
            f"({len(CHROME_UAS)} Chrome, {len(FIREFOX_UAS)} Firefox, {len(SAFARI_UAS)} Safari user agents, each "
            "with three Accept-Language values; the headers each browser sends over plain HTTP, in its order); "
            "rps counts all four requests. Crawler workloads: the crawler's one header set from every address. "
            "1 MiB file: one Chrome header set from every address.")


LUA = r"""-- Generated by benches/load/crowd.py: pre-built requests, one client per
-- X-Forwarded-For address; thread k of N builds the clients i with i mod N = k.
local groups = %GROUPS%
local clients, nthreads = %CLIENTS%, %THREADS%
local reqs, n = {}, 0
local made = 0
function setup(thread)
  thread:set("id", made)
  made = made + 1
end
function init(args)
  local me = id or 0
  for i = 0, clients - 1 do
    if i % nthreads == me then
      local s = i % 512
      local addr = string.format("198.%d.%d.%d", 18 + math.floor(s / 256), s % 256, math.floor(i / 512) + 1)
      local g = groups[(i % #groups) + 1]
      for k = 1, #g do
        reqs[#reqs + 1] = g[k] .. addr .. "\r\n\r\n"
      end
    end
  end
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
"""


def lua(workload, threads):
    """The wrk script of a workload, for wrk with `threads` threads."""
    body = "{\n" + ",\n".join("  {" + ", ".join(json.dumps(r) for r in g) + "}" for g in groups(workload)) + "\n}"
    return (LUA.replace("%GROUPS%", body).replace("%CLIENTS%", str(CLIENTS))
            .replace("%THREADS%", str(threads)))
