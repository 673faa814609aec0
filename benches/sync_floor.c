/* The floor of a sync scan: a C loop reading the same /proc files as forkscope's full scan
 * (per process: task/ listing; per thread: stat, syscall, wchan, sched; fd/ links and the
 * fdinfo of pipes; maps), ROUNDS times. Prints the median microseconds per process.
 * Usage: sync_floor ROUNDS PID... */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static void slurp(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

static void scan(int pid) {
    char path[512], link[256];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            const char *files[] = {"stat", "syscall", "wchan", "sched"};
            for (int i = 0; i < 4; i++) {
                snprintf(path, sizeof path, "/proc/%d/task/%s/%s", pid, e->d_name, files[i]);
                slurp(path);
            }
        }
        closedir(d);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/proc/%d/fd/%s", pid, e->d_name);
            ssize_t n = readlink(path, link, sizeof link - 1);
            if (n > 0 && strncmp(link, "pipe:", 5) == 0) {
                snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", pid, e->d_name);
                slurp(path);
            }
        }
        closedir(d);
    }
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    slurp(path);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    int rounds = atoi(argv[1]), n = argc - 2;
    double *us = calloc(rounds, sizeof *us);
    for (int r = 0; r < rounds; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++)
            scan(atoi(argv[i + 2]));
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[r] = ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3) / n;
    }
    qsort(us, rounds, sizeof *us, cmp);
    printf("%.1f\n", us[rounds / 2]);
    return 0;
}
