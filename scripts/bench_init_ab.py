"""Interleaved A/B of cold-start init: each program is started 30 times,
round-robin, against a socket standing in for the Runtime API; the time
from spawn to its first request (`GET /next`) is init. For quick A/B runs
(an old and a new binary, an environment variable on and off) where
runtime-bench's full run is too long.

Usage: bench_init_ab.py <program>... where a program may be prefixed with
`VAR=value,VAR2=value@` to set variables for it.
"""
import socket, subprocess, time, sys, os, statistics
progs=sys.argv[1:]
env={"AWS_LAMBDA_FUNCTION_NAME":"e","AWS_LAMBDA_FUNCTION_MEMORY_SIZE":"128","AWS_LAMBDA_FUNCTION_VERSION":"1",
     "AWS_REGION":"eu-west-1","AWS_EC2_METADATA_DISABLED":"true","AWS_LAMBDA_LOG_FORMAT":"JSON",
     "NOTIFY_QUEUE_URL":"http://127.0.0.1:1/q","INVOICE_BUCKET":"b","BACKUP_BUCKET":"b","PATH":"/usr/bin:/bin"}
res={p:[] for p in progs}
for i in range(30):
    for p in progs:
        s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)
        e=dict(env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d"%s.getsockname()[1])
        prog=p
        if '@' in p:
            extra,prog=p.rsplit('@',1)
            for kv in extra.split(','):
                k,v=kv.split('=',1); e[k]=v
        t=time.perf_counter()
        proc=subprocess.Popen([prog],env=e,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
        c,_=s.accept(); c.recv(4096)
        res[p].append((time.perf_counter()-t)*1e3)
        proc.kill(); proc.wait(); c.close(); s.close()
for p,v in res.items():
    v.sort(); print(f"{p[-60:]:60s} median {statistics.median(v):6.2f} ms  min {v[0]:6.2f}  max {v[-1]:6.2f}")
