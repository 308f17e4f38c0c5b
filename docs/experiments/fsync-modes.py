#!/usr/bin/env python3
"""Cost of one durable 8 KiB write on this machine, four ways (wall and CPU per operation).

The WAL appends to a growing file and calls fdatasync (the first line). The others are what a
WAL could do instead: overwrite a file whose blocks are already written (no ext4 journal
commit for a size or extent change; what docs/experiments/wal-segment-recycling.patch did),
the same with O_DIRECT|O_DSYNC (one syscall, no page cache), and O_DIRECT on a growing file.
Run it in the directory to measure (it writes ~50 MB there):

    cd /path/on/the/data/disk && python3 /path/to/docs/experiments/fsync-modes.py
"""
import os, time, mmap, resource, sys
N=3000; SZ=8192
buf=mmap.mmap(-1, SZ); buf.write(b'x'*SZ)
def cpu(): r=resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime+r.ru_stime
def run(name, fd, op):
    t0=time.perf_counter(); c0=cpu()
    for i in range(N): op(fd,i)
    t1=time.perf_counter(); c1=cpu()
    print(f"{name:40s} wall {1e6*(t1-t0)/N:7.1f} us/op  cpu {1e6*(c1-c0)/N:7.1f} us/op")
# 1: append + fdatasync (growing file)
p='a.wal'; 
if os.path.exists(p): os.remove(p)
fd=os.open(p, os.O_WRONLY|os.O_CREAT)
run("append+fdatasync (growing)", fd, lambda fd,i:(os.write(fd,buf), os.fdatasync(fd)))
os.close(fd)
# 2: overwrite prewritten + fdatasync
p='b.wal'
with open(p,'wb') as f: f.write(b'\0'*(SZ*N)); f.flush(); os.fsync(f.fileno())
fd=os.open(p, os.O_WRONLY)
run("overwrite prewritten+fdatasync", fd, lambda fd,i:(os.pwrite(fd,buf,i*SZ), os.fdatasync(fd)))
os.close(fd)
# 3: O_DIRECT|O_DSYNC overwrite prewritten
fd=os.open(p, os.O_WRONLY|os.O_DIRECT|os.O_DSYNC)
run("O_DIRECT|O_DSYNC overwrite prewritten", fd, lambda fd,i:os.pwrite(fd,buf,i*SZ))
os.close(fd)
# 4: O_DIRECT + fdatasync on growing file
p='c.wal'
if os.path.exists(p): os.remove(p)
fd=os.open(p, os.O_WRONLY|os.O_CREAT|os.O_DIRECT)
run("O_DIRECT append + fdatasync (growing)", fd, lambda fd,i:(os.write(fd,buf), os.fdatasync(fd)))
os.close(fd)
for p in ("a.wal", "b.wal", "c.wal"):
    os.remove(p)
