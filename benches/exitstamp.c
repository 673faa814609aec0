/* Worker for benches/exit_latency.sh: sleeps 1 s + FORKSCOPE_WORKER * STEP_MS (the second
 * lets forkscope finish spawning the whole pool first), prints
 * "stamp NANOSECONDS" (CLOCK_REALTIME) with one write(2), and _exits at once.
 *
 *   exitstamp STEP_MS
 *
 * With `floor N STEP_MS` it is instead its own reference parent: forks N such children and
 * times each waitpid() return against the child's stamp (sent through a pipe), printing one
 * latency in nanoseconds per line: the kernel's exit-to-parent floor.
 *
 * With `floor-read N STEP_MS` the parent is instead a minimal C supervisor: the children's
 * stdout is a pipe it reads, and it reaps on SIGCHLD (signalfd) in one poll() loop, reading
 * the pipe before each reap, as forkscope does. It prints the same latencies. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
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

/* Forks n children that each sleep 1 s + i * step ms, write {pid, CLOCK_REALTIME ns} to
 * fds[1] and _exit(0) (with `unblock` unblocked first, if given); their pids in pids[].
 * Closes fds[1] in the parent. */
static void fork_stampers(int n, long step, int fds[2], pid_t *pids, const sigset_t *unblock) {
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            if (unblock) sigprocmask(SIG_UNBLOCK, unblock, NULL);
            nap_ms(i * step + 1000);
            long long stamp[2] = {getpid(), now_ns()};
            ssize_t w = write(fds[1], stamp, sizeof stamp); (void)w;
            _exit(0);
        }
        pids[i] = pid;
    }
    close(fds[1]);
}

/* Reads every stamp the pipe holds (non-blocking) into stamps[] by child index. */
static void read_stamps(int fd, int n, pid_t *pids, long long *stamps) {
    long long stamp[2];
    while (read(fd, stamp, sizeof stamp) == sizeof stamp)
        for (int j = 0; j < n; j++)
            if (pids[j] == stamp[0]) stamps[j] = stamp[1];
}

static int floor_read(int n, long step) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) return 1;
    long long *waited = calloc(n, sizeof *waited), *stamps = calloc(n, sizeof *stamps);
    pid_t *pids = calloc(n, sizeof *pids);
    fork_stampers(n, step, fds, pids, &chld);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {sfd, POLLIN, 0}};
    for (int reaped = 0; reaped < n;) {
        if (poll(pfd, 2, -1) < 0) continue;
        read_stamps(fds[0], n, pids, stamps);
        if (!(pfd[1].revents & POLLIN)) continue;
        struct signalfd_siginfo info;
        while (read(sfd, &info, sizeof info) == sizeof info) {}
        pid_t pid;
        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
            long long t = now_ns();
            for (int j = 0; j < n; j++) if (pids[j] == pid) waited[j] = t;
            reaped++;
        }
    }
    read_stamps(fds[0], n, pids, stamps);
    for (int j = 0; j < n; j++) printf("%lld\n", waited[j] - stamps[j]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "floor") == 0) {
        int n = atoi(argv[2]);
        long step = atol(argv[3]);
        int fds[2];
        if (pipe(fds) != 0) return 1;
        long long *waited = calloc(n, sizeof *waited);
        pid_t *pids = calloc(n, sizeof *pids);
        fork_stampers(n, step, fds, pids, NULL);
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
    if (argc == 4 && strcmp(argv[1], "floor-read") == 0) return floor_read(atoi(argv[2]), atol(argv[3]));
    if (argc != 2) { fprintf(stderr, "usage: exitstamp STEP_MS | exitstamp floor|floor-read N STEP_MS\n"); return 2; }
    const char *w = getenv("FORKSCOPE_WORKER");
    nap_ms((w ? atol(w) : 0) * atol(argv[1]) + 1000);
    char buf[64];
    int len = snprintf(buf, sizeof buf, "stamp %lld\n", now_ns());
    ssize_t r = write(1, buf, len); (void)r;
    _exit(0);
}
