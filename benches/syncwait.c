/* A waiting worker for the sync benchmarks: two threads, the main one blocked in sem_wait on
 * the named POSIX semaphore argv[1] (a futex in shared memory), the other sleeping.
 * Usage: syncwait /NAME   (never returns; kill it) */
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec t = {3600, 0};
        nanosleep(&t, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: syncwait /NAME\n");
        return 2;
    }
    sem_t *sem = sem_open(argv[1], O_CREAT, 0600, 0);
    if (sem == SEM_FAILED) {
        perror("sem_open");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    for (;;)
        sem_wait(sem);
}
