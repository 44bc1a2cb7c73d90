#!/usr/bin/env python3
"""Memory of `tokentally serve`: RSS idle, during and after 16 concurrent signed
25 MiB webhook bodies, and during a first mirror sync of a long history.

    cargo build --release && cargo bench --bench scan   # builds target/bench-repos/synthetic-50000.git
    python3 benches/serve_memory.py target/release/tokentally \
        "$PWD/target/bench-repos/synthetic-50000.git" main

Arguments: the binary, the bare repository to mirror (absolute path), its
default branch, and optionally a clone URL to fetch it from instead of file://.
Linux only (reads /proc/PID/status)."""
import hashlib, hmac, json, os, re, subprocess, sys, tempfile, threading, time, socket

BIN = sys.argv[1]
REPO = sys.argv[2]
SECRET = "rss-secret"

def rss(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0

def post(port, event, delivery, body):
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    s = socket.create_connection(("127.0.0.1", port))
    head = (f"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"x-github-event: {event}\r\nx-github-delivery: {delivery}\r\nx-hub-signature-256: {sig}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    s.sendall(head + body)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.split(b"\r\n", 1)[0].decode()

d = tempfile.mkdtemp()
env = dict(os.environ)
env.update({
    "TOKENTALLY_GITHUB_WEBHOOK_SECRET": SECRET,
    "TOKENTALLY_DATABASE_URL": "sqlite://rss.db",
    "TOKENTALLY_MIRRORS_ALLOWED_REMOTES": "file://" + os.path.dirname(REPO) + "/"
        + ("," + sys.argv[4].rsplit("/", 1)[0] + "/" if len(sys.argv) > 4 else ""),
    "TOKENTALLY_LOG": "warn,tokentally=info",
    "NO_COLOR": "1",
})
p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0"], cwd=d, env=env, stderr=subprocess.PIPE, text=True)
port = None
log = []
for line in p.stderr:
    log.append(line)
    m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
    if m:
        port = int(m.group(1)); break
synced = threading.Event()
def drain():
    for line in p.stderr:
        log.append(line)
        if "mirror synced" in line:
            synced.set()
threading.Thread(target=drain, daemon=True).start()
time.sleep(2)
print(f"idle: RSS {rss(p.pid):.1f} MB")

pad = b" " * (25 * 1024 * 1024 - 200)
body = b'{"zen": "x", "pad": "' + pad + b'"}'
assert len(body) <= 25 * 1024 * 1024
threads = [threading.Thread(target=lambda i=i: print("  ", post(port, "star", f"big-{i}", body))) for i in range(16)]
t0 = time.time()
for t in threads: t.start()
peak = 0
while any(t.is_alive() for t in threads):
    peak = max(peak, rss(p.pid)); time.sleep(0.05)
for t in threads: t.join()
print(f"16 concurrent 25 MiB bodies: {time.time()-t0:.1f} s, peak RSS {peak:.1f} MB (VmHWM {rss(p.pid, 'VmHWM'):.1f} MB)")
time.sleep(3)
print(f"after the bodies: RSS {rss(p.pid):.1f} MB")

push = json.dumps({"ref": "refs/heads/main", "before": "0"*40, "after": "1"*40, "commits": [],
                   "repository": {"full_name": "bench/synthetic", "default_branch": sys.argv[3],
                                  "clone_url": (sys.argv[4] if len(sys.argv) > 4 else "file://" + REPO)}}).encode()
print("  ", post(port, "push", "sync-1", push))
t0 = time.time(); peak = 0
last = 0
while not synced.is_set() and time.time() - t0 < 900:
    r = rss(p.pid); peak = max(peak, r); time.sleep(0.25)
    if time.time() - last > 10:
        last = time.time(); print(f"   t={time.time()-t0:.0f}s RSS {r:.0f} MB")
print(f"first sync of {REPO}: {time.time()-t0:.1f} s, peak RSS {peak:.1f} MB; after: {rss(p.pid):.1f} MB")
for line in log:
    if "mirror synced" in line: print("  ", line.strip()[:300])
p.terminate(); p.wait(timeout=30)
