#!/usr/bin/env python3
"""Issue 12 measurement: N connections that never read flood node_info, send a close frame and
keep their sockets open; the node's fds and RSS are sampled before, right after, and past the
close deadline, then 64 fresh connections from the same address are tried."""
import os, socket, subprocess, sys, time, base64, struct, json

def frame(payload: bytes, opcode=1) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126: head += bytes([0x80 | n])
    elif n < 65536: head += bytes([0x80 | 126]) + struct.pack('>H', n)
    else: head += bytes([0x80 | 127]) + struct.pack('>Q', n)
    return head + b'\0\0\0\0' + payload  # zero mask key: payload unchanged

def upgrade(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(('127.0.0.1', port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f'GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    buf = b''
    while b'\r\n\r\n' not in buf:
        d = s.recv(4096)
        if not d: raise RuntimeError('closed during upgrade')
        buf += d
    return s, buf.split(b'\r\n\r\n', 1)[1]

def sample(pid):
    fds = len(os.listdir(f'/proc/{pid}/fd'))
    rss = [l for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS')][0].split()[1]
    return fds, int(rss) // 1024

def accepted_of(port, n):
    ok = 0; socks = []
    for i in range(n):
        try:
            s, rest = upgrade(port)
            s.settimeout(3)
            s.sendall(frame(b'{"type":"node_info","id":1}'))
            data = rest
            while b'node_info_ok' not in data and b'too_many' not in data:
                d = s.recv(65536)
                if not d: break
                data += d
            if b'node_info_ok' in data: ok += 1
            socks.append(s)
        except Exception as e:
            pass
    for s in socks: s.close()
    return ok

def main():
    binary, label = sys.argv[1], sys.argv[2]
    extra = sys.argv[3:]
    n = int(os.environ.get('N', '32')); reqs = int(os.environ.get('REQS', '80000'))
    port = 17000 + os.getpid() % 1000
    p = subprocess.Popen([binary, '--memory', '--listen', f'127.0.0.1:{port}', '--log', 'error'] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while b'listening' not in p.stdout.readline(): pass
    time.sleep(0.3)
    base = sample(p.pid)
    flood = b''.join(frame(f'{{"type":"node_info","id":{i}}}'.encode()) for i in range(reqs))
    print(f'{label}: {n} non-reading connections x {reqs} node_info, then close frame; baseline fds/RSS {base}')
    keep = []
    for rnd in range(int(os.environ.get('ROUNDS', '1'))):
        attackers = []
        for i in range(n):
            s, _ = upgrade(port, rcvbuf=4096)
            s.settimeout(10)
            try: s.sendall(flood)
            except socket.timeout: pass
            try: s.sendall(frame(b'\x03\xe8', opcode=8))
            except socket.timeout: pass
            attackers.append(s)
        t0 = time.time()
        rows = [('t=0 (all ended)', sample(p.pid))]
        for t in (3, 7, 12, 16):
            time.sleep(max(0, t0 + t - time.time()))
            rows.append((f't={t}s', sample(p.pid)))
        acc = accepted_of(port, 64)
        print(f' round {rnd+1}')
        for name, (fds, rss) in rows: print(f'  {name:18} fds {fds:5}  RSS {rss:5} MiB')
        print(f'  64 new connections from the same address at t={time.time()-t0:.0f}s: {acc} accepted')
        keep += attackers
    attackers = keep
    for s in attackers: s.close()
    p.terminate(); p.wait()

main()
