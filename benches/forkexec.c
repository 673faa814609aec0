/* The floor for benches/spawn.sh: start N copies of a command with a plain fork+exec loop.
 *
 *   forkexec [--confirm] N CMD [ARGS...]
 *
 * Prints "started N" once the loop is done (with --confirm, once every exec is known to have
 * succeeded, through a close-on-exec pipe per child, which is what Rust's std::process::Command
 * does and so what forkscope pays too). Then waits for a line on stdin (or EOF), SIGTERMs the
 * children, reaps them all and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int confirm = 0, arg = 1;
    if (arg < argc && strcmp(argv[arg], "--confirm") == 0) { confirm = 1; arg++; }
    if (argc - arg < 2) { fprintf(stderr, "usage: forkexec [--confirm] N CMD [ARGS...]\n"); return 2; }
    int n = atoi(argv[arg]);
    char **cmd = &argv[arg + 1];
    pid_t *pids = calloc(n, sizeof *pids);
    for (int i = 0; i < n; i++) {
        int fds[2] = {-1, -1};
        if (confirm && pipe2(fds, O_CLOEXEC) != 0) { perror("pipe2"); return 1; }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            execvp(cmd[0], cmd);
            int err = errno;
            if (confirm) { ssize_t w = write(fds[1], &err, sizeof err); (void)w; }
            _exit(127);
        }
        pids[i] = pid;
        if (confirm) {
            close(fds[1]);
            int err;
            ssize_t r;
            do { r = read(fds[0], &err, sizeof err); } while (r < 0 && errno == EINTR);
            close(fds[0]);
            if (r > 0) { fprintf(stderr, "exec failed: %s\n", strerror(err)); return 1; }
        }
    }
    printf("started %d\n", n);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) { /* EOF: stop too */ }
    for (int i = 0; i < n; i++) kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
    return 0;
}
