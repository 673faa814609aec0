/* Worker for benches/exit_latency.sh: sleeps 1 s + FORKSCOPE_WORKER * STEP_MS (the second
 * lets forkscope finish spawning the whole pool first), prints
 * "stamp NANOSECONDS" (CLOCK_REALTIME) with one write(2), and _exits at once.
 *
 *   exitstamp STEP_MS
 *
 * With `floor N STEP_MS` it is instead its own reference parent: forks N such children and
 * times each waitpid() return against the child's stamp (sent through a pipe), printing one
 * latency in nanoseconds per line: the kernel's exit-to-parent floor. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "floor") == 0) {
        int n = atoi(argv[2]);
        long step = atol(argv[3]);
        int fds[2];
        if (pipe(fds) != 0) return 1;
        long long *waited = calloc(n, sizeof *waited);
        pid_t *pids = calloc(n, sizeof *pids);
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                nap_ms(i * step + 1000);
                long long stamp[2] = {getpid(), now_ns()};
                ssize_t w = write(fds[1], stamp, sizeof stamp); (void)w;
                _exit(0);
            }
            pids[i] = pid;
        }
        close(fds[1]);
        for (int i = 0; i < n; i++) {
            pid_t pid = waitpid(-1, NULL, 0);
            long long t = now_ns();
            for (int j = 0; j < n; j++) if (pids[j] == pid) waited[j] = t;
        }
        long long stamp[2];
        while (read(fds[0], stamp, sizeof stamp) == sizeof stamp)
            for (int j = 0; j < n; j++)
                if (pids[j] == stamp[0]) printf("%lld\n", waited[j] - stamp[1]);
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: exitstamp STEP_MS | exitstamp floor N STEP_MS\n"); return 2; }
    const char *w = getenv("FORKSCOPE_WORKER");
    nap_ms((w ? atol(w) : 0) * atol(argv[1]) + 1000);
    char buf[64];
    int len = snprintf(buf, sizeof buf, "stamp %lld\n", now_ns());
    ssize_t r = write(1, buf, len); (void)r;
    _exit(0);
}
