/*
 * read_limit.c: "the C limit program" of bench/Invoke-Benchmark.ps1 (issue 15). Reads a whole file into
 * freshly malloc'd memory with N threads (default 2), each pread()ing its contiguous share of the file in
 * large chunks, and prints one JSON line. It is the simple, good C way of getting a file's bytes into new
 * memory: what an eager load of a 1 GiB checkpoint cannot beat by much.
 *
 *   cc -O2 -pthread -o read_limit read_limit.c
 *   ./read_limit <file> [--threads N] [--chunk-mib M] [--no-populate]
 *
 * Timing: CLOCK_MONOTONIC from just before malloc() to just after the threads are joined (open(), fstat()
 * and the process start are outside; free() too).
 *
 * Memory: malloc() of a large size is a fresh anonymous mmap (zero pages, not yet faulted in). By default
 * each thread calls madvise(MADV_POPULATE_WRITE) on a chunk's range just before pread()ing into it (Linux
 * 5.14+; one call faults the chunk's pages in, instead of one fault per 4 KiB page inside the kernel's copy),
 * which is what TorchLoad's eager reader does too. --no-populate leaves that out (the kernel then faults the
 * pages in during the copy). Transparent huge pages are left to the system setting (no MADV_HUGEPAGE); the
 * JSON says which mode ran and the THP setting is printed by the driver.
 *
 * Output: {"seconds": s, "bytes": n, "threads": N, "chunk_bytes": c, "populate": true|false,
 *          "populate_supported": true|false}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct part {
    int fd;
    char *buf;
    long long off, len, chunk;
    int populate;
    int populate_failed;
    int err;
};

static void *read_part(void *arg) {
    struct part *p = arg;
    long page = sysconf(_SC_PAGESIZE);
    for (long long done = 0; done < p->len;) {
        long long want = p->len - done < p->chunk ? p->len - done : p->chunk;
        char *dst = p->buf + p->off + done;
        if (p->populate && !p->populate_failed) {
            /* madvise needs a page-aligned start: populate the whole pages inside [dst, dst+want) */
            unsigned long start = ((unsigned long)dst + page - 1) & ~(unsigned long)(page - 1);
            unsigned long end = ((unsigned long)dst + want) & ~(unsigned long)(page - 1);
            if (end > start && madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0) p->populate_failed = 1;
        }
        ssize_t n = pread(p->fd, dst, (size_t)want, (off_t)(p->off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            p->err = errno;
            return NULL;
        }
        if (n == 0) { p->err = EIO; return NULL; }   /* file shrank */
        done += n;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 2, populate = 1;
    long long chunk = 4LL << 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk-mib") && i + 1 < argc) chunk = atoll(argv[++i]) << 20;
        else if (!strcmp(argv[i], "--no-populate")) populate = 0;
        else if (!path) path = argv[i];
        else { fprintf(stderr, "unexpected argument %s\n", argv[i]); return 2; }
    }
    if (!path || threads < 1 || threads > 64 || chunk <= 0) {
        fprintf(stderr, "usage: read_limit <file> [--threads N] [--chunk-mib M] [--no-populate]\n");
        return 2;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(path); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    long long size = st.st_size;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) { fprintf(stderr, "malloc(%lld) failed\n", size); return 1; }
    pthread_t tid[64];
    struct part parts[64];
    long long share = (size + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        long long off = share * t;
        long long len = off >= size ? 0 : (size - off < share ? size - off : share);
        parts[t] = (struct part){ .fd = fd, .buf = buf, .off = off, .len = len, .chunk = chunk, .populate = populate };
        if (pthread_create(&tid[t], NULL, read_part, &parts[t]) != 0) { perror("pthread_create"); return 1; }
    }
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    int populate_supported = 1;
    for (int t = 0; t < threads; t++) {
        if (parts[t].err) { fprintf(stderr, "pread: %s\n", strerror(parts[t].err)); return 1; }
        if (parts[t].populate_failed) populate_supported = 0;
    }
    /* touch the result so the reads cannot be thought dead; the sum is not printed */
    volatile unsigned char sink = 0;
    for (long long i = 0; i < size; i += 1 << 20) sink ^= (unsigned char)buf[i];
    (void)sink;
    free(buf);
    close(fd);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"seconds\": %.9f, \"bytes\": %lld, \"threads\": %d, \"chunk_bytes\": %lld, \"populate\": %s, \"populate_supported\": %s}\n",
           seconds, size, threads, chunk, populate ? "true" : "false", populate && populate_supported ? "true" : "false");
    return 0;
}
