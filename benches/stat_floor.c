/* The floor of one /proc sample: open, read, close of /proc/PID/stat for each pid given,
 * nothing parsed. Usage: stat_floor PID... ; prints the microseconds per process of one pass. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    int n = argc - 1, read_ok = 0;
    char path[64], buf[4096];
    if (n < 1) return 2;
    double start = now_us();
    for (int i = 1; i < argc; i++) {
        snprintf(path, sizeof path, "/proc/%s/stat", argv[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (read(fd, buf, sizeof buf) > 0) read_ok++;
        close(fd);
    }
    double took = now_us() - start;
    if (read_ok != n) fprintf(stderr, "read %d of %d\n", read_ok, n);
    printf("%.3f\n", took / n);
    return 0;
}
