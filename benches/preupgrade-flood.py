#!/usr/bin/env python3
"""Issue 12 Medium 1: one address opens SOCKS raw TCP sockets and sends nothing; the node's fds
are counted and a websocket node_info from another loopback address is timed."""
import os, socket, subprocess, sys, time, base64, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
binary, label, nofile = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = sys.argv[4:]
port = 18000 + os.getpid() % 1000
def limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
p = subprocess.Popen([binary, '--memory', '--listen', f'0.0.0.0:{port}', '--log', 'error'] + extra,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
while b'listening' not in p.stdout.readline(): pass
fds = lambda: len(os.listdir(f'/proc/{p.pid}/fd'))
base = fds()
n = int(os.environ.get('SOCKS', '3000'))
socks = []
t = time.time()
for i in range(n):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    socks.append(s)
time.sleep(0.5)
during = fds()
def login(src):
    t0 = time.time()
    s = socket.create_connection(('127.0.0.1', port), timeout=10, source_address=(src, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    data = b''
    while b'\r\n\r\n' not in data: data += s.recv(4096)
    payload = b'{"type":"node_info","id":1}'
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + b'\0\0\0\0' + payload)
    while b'node_info_ok' not in data:
        d = s.recv(65536)
        if not d: return f'closed after {time.time()-t0:.3f}s'
        data += d
    s.close()
    return f'answered in {time.time()-t0:.3f}s'
try: other = login('127.0.0.2')
except Exception as e: other = f'failed: {e}'
print(f'{label} (node soft=hard NOFILE {nofile}): {n} silent sockets from 127.0.0.1')
print(f'  node fds: baseline {base}, with the flood {during}')
print(f'  node_info over websocket from 127.0.0.2: {other}')
err = b''
for s in socks: s.close()
time.sleep(3)
print(f'  node fds 3 s after the flood closed: {fds()}')
p.terminate(); _, err = p.communicate()
print(f'  "Too many open files" lines logged: {err.count(b"Too many open files")}')
