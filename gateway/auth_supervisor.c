/*
 * auth_supervisor.c - the PAM auth process's supervisor: forked by the master
 * before it drops root (auth_process.c), it keeps root, reads no client
 * byte, and keeps a fixed pool of workers (auth_worker.c) running.
 *
 * Process tree:
 *
 *	master (drops root later)
 *	 `- supervisor (keeps root, reads no client byte, restarts workers)
 *	     `- worker x N (each its own process group; runs PAM)
 *
 * It holds the workers' end of the shared request socket (SO_PASSCRED set
 * by the master) and the read end of the master's lifeline pipe: EOF on the
 * lifeline, SIGTERM or the master's death stops it, and it stops its workers
 * (SIGTERM, then SIGKILL after a grace period) before it exits. Before the
 * first worker it maps the shared per-process request count (auth_quota.c),
 * which all workers share and which outlives a worker's restart.
 *
 * A worker that dies is reaped and its process group killed (helpers a PAM
 * module forked); the supervisor is a child subreaper, so helpers that
 * started a session of their own come back to it and are killed as well.
 * The slot is restarted, backing off when it keeps dying young. The
 * supervisor is not dumpable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_process_internal.h"
#include "auth_quota.h"
#include "chan.h"
#include "clock.h"
#include "log.h"

#define YOUNG_DEATH_MS		1000	/* a worker dying younger than this backs off */
#define RESTART_DELAY_MIN_MS	100
#define RESTART_DELAY_MAX_MS	10000

void authd_set_handler(int sig, void (*handler)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

static int sup_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sup_got_term, sup_got_chld;

static void sup_on_signal(int sig)
{
	int saved = errno;
	char byte = (char)sig;

	if (sig == SIGCHLD)
		sup_got_chld = 1;
	else
		sup_got_term = 1;
	if (write(sup_pipe[1], &byte, 1) < 0) {
		/* Full pipe: the loop is awake already. */
	}
	errno = saved;
}

static void sup_drain(void)
{
	char buf[64];

	while (read(sup_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void spawn_worker(struct supervisor *s, unsigned slot)
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* The worker needs the request socket and the log, nothing else. */
		close(s->lifeline_fd);
		close(sup_pipe[0]);
		close(sup_pipe[1]);
		authd_worker_main(s);
	}
	if (pid > 0)
		setpgid(pid, pid);	/* also here: no window where the group is unset */
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("auth worker fork slot=%u: %s", slot, strerror(errno));
		s->slots[slot].restart_at = mg_now_ms() + RESTART_DELAY_MAX_MS;
		return;
	}
	s->slots[slot].pid = pid;
	s->slots[slot].started_ms = mg_now_ms();
	log_debug("auth worker started slot=%u pid=%ld", slot, (long)pid);
}

static int slot_of(const struct supervisor *s, pid_t pid)
{
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->slots[i].pid == pid)
			return (int)i;
	}
	return -1;
}

static void log_worker_end(unsigned slot, pid_t pid, int status, unsigned timeout_s)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_TIMEOUT)
		log_warning("auth worker timed out in a PAM call slot=%u pid=%ld timeout=%us",
			    slot, (long)pid, timeout_s);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("auth worker exited slot=%u pid=%ld", slot, (long)pid);
	else if (WIFEXITED(status))
		log_error("auth worker exited slot=%u pid=%ld status=%d", slot, (long)pid,
			  WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_error("auth worker died slot=%u pid=%ld signal=%d", slot, (long)pid,
			  WTERMSIG(status));
}

/*
 * Kill every child of the supervisor that is not a current worker. The
 * supervisor is a child subreaper, so helpers that PAM modules forked are
 * reparented to it when their worker dies, and pam_exec starts them in a
 * session of their own, out of reach of the worker's process group. Found
 * by scanning /proc: /proc/<pid>/task/<tid>/children is not always built in.
 */
static void kill_orphans(const struct supervisor *s)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[64], buf[512];
		const char *paren;
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		int ppid;
		ssize_t n;
		int fd;

		if (*end != '\0' || pid <= 0 || pid == (long)s->self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* The command name may hold anything: the fields start after the last ')'. */
		paren = strrchr(buf, ')');
		if (paren == NULL || sscanf(paren + 1, " %*c %d", &ppid) != 1 ||
		    ppid != (int)s->self || slot_of(s, (pid_t)pid) >= 0)
			continue;
		log_warning("auth helper left by a dead worker killed pid=%ld", pid);
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

/*
 * Reap every dead child. Each is first looked at without reaping (WNOWAIT),
 * so its pid cannot be reused while its process group is killed: helpers a
 * PAM module forked must not outlive the worker.
 */
static void reap_workers(struct supervisor *s, bool stopping)
{
	for (;;) {
		siginfo_t si;
		int status;
		int slot;
		pid_t pid;

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return;
		pid = si.si_pid;
		kill(-pid, SIGKILL);
		if (waitpid(pid, &status, 0) < 0)
			continue;
		slot = slot_of(s, pid);
		if (slot < 0)
			continue;
		log_worker_end((unsigned)slot, pid, status, s->timeout_s);
		s->slots[slot].pid = 0;
		kill_orphans(s);
		if (stopping)
			continue;
		/* Bounded restart rate: a slot that keeps dying young backs off. */
		if (mg_now_ms() - s->slots[slot].started_ms < YOUNG_DEATH_MS) {
			struct worker_slot *w = &s->slots[slot];
			unsigned shift = w->young_deaths < 7 ? w->young_deaths : 7;
			long long delay = (long long)RESTART_DELAY_MIN_MS << shift;

			w->young_deaths++;
			if (delay > RESTART_DELAY_MAX_MS)
				delay = RESTART_DELAY_MAX_MS;
			w->restart_at = mg_now_ms() + delay;
			log_warning("auth worker restart delayed slot=%d delay=%lldms", slot,
				    delay);
		} else {
			s->slots[slot].young_deaths = 0;
			s->slots[slot].restart_at = mg_now_ms();
		}
	}
}

static unsigned running_workers(const struct supervisor *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n_workers; i++)
		n += s->slots[i].pid != 0;
	return n;
}

static void signal_workers(const struct supervisor *s, int sig)
{
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->slots[i].pid != 0) {
			kill(-s->slots[i].pid, sig);
			kill(s->slots[i].pid, sig);
		}
	}
}

static _Noreturn void supervisor_stop(struct supervisor *s, const char *why)
{
	long long deadline = mg_now_ms() + AUTHD_STOP_WAIT_MS;

	log_info("auth supervisor stopping reason=%s workers=%u", why, running_workers(s));
	close(s->worker_fd);
	signal_workers(s, SIGTERM);
	while (running_workers(s) > 0 && mg_ms_left(deadline) > 0) {
		struct pollfd pfd = { .fd = sup_pipe[0], .events = POLLIN };

		reap_workers(s, true);
		if (running_workers(s) == 0)
			break;
		poll(&pfd, 1, mg_ms_left(deadline));
		sup_drain();
	}
	if (running_workers(s) > 0) {
		log_warning("auth workers still running after %dms, killing them",
			    AUTHD_STOP_WAIT_MS);
		signal_workers(s, SIGKILL);
		for (unsigned i = 0; i < s->n_workers; i++) {
			if (s->slots[i].pid != 0 && waitpid(s->slots[i].pid, NULL, 0) >= 0)
				s->slots[i].pid = 0;
		}
	}
	reap_workers(s, true);
	kill_orphans(s);
	/* Reap the helpers just killed, briefly: init takes any straggler. */
	deadline = mg_now_ms() + 500;
	for (;;) {
		struct timespec pause = { .tv_sec = 0, .tv_nsec = 5 * 1000 * 1000 };
		pid_t rc = waitpid(-1, NULL, WNOHANG);

		if (rc < 0 && errno != EINTR)
			break;
		if (rc == 0 && mg_ms_left(deadline) == 0)
			break;
		if (rc == 0)
			nanosleep(&pause, NULL);
	}
	_exit(0);
}

static _Noreturn void supervisor_loop(struct supervisor *s)
{
	for (unsigned i = 0; i < s->n_workers; i++)
		spawn_worker(s, i);
	log_info("auth supervisor ready pid=%ld service=%s workers=%u timeout=%us "
		 "requests_per_session=%u", (long)s->self, s->service, s->n_workers, s->timeout_s,
		 s->max_requests);

	for (;;) {
		struct pollfd pfds[2] = {
			{ .fd = s->lifeline_fd, .events = POLLIN },
			{ .fd = sup_pipe[0], .events = POLLIN },
		};
		long long now = mg_now_ms();
		int timeout = -1;

		for (unsigned i = 0; i < s->n_workers; i++) {
			struct worker_slot *slot = &s->slots[i];

			if (slot->pid != 0)
				continue;
			if (slot->restart_at <= now) {
				spawn_worker(s, i);
				if (slot->pid != 0)
					log_info("auth worker restarted slot=%u pid=%ld", i,
						 (long)slot->pid);
			}
			if (slot->pid == 0) {
				int wait = mg_ms_left(slot->restart_at);

				if (timeout < 0 || wait < timeout)
					timeout = wait;
			}
		}
		if (poll(pfds, 2, timeout) < 0 && errno != EINTR)
			supervisor_stop(s, "poll-error");
		if (pfds[1].revents != 0)
			sup_drain();
		if (sup_got_term)
			supervisor_stop(s, "signal");
		if (pfds[0].revents != 0) {
			char byte;
			ssize_t n = read(s->lifeline_fd, &byte, 1);

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				supervisor_stop(s, "master-gone");
		}
		if (sup_got_chld) {
			sup_got_chld = 0;
			reap_workers(s, false);
		}
	}
}

_Noreturn void authd_supervisor_main(const struct authd_options *opt, const struct authd *started,
				     int worker_fd, int lifeline_fd, pid_t master)
{
	static struct supervisor s;
	int keep[2] = { worker_fd, lifeline_fd };
	char err[256];
	sigset_t none;

	memset(&s, 0, sizeof(s));
	snprintf(s.service, sizeof(s.service), "%s", opt->service);
	s.timeout_s = opt->timeout_s;
	s.n_workers = opt->workers;
	s.max_requests = started->max_requests;
	/* Our own copy: nothing of the master's configuration is used after this. */
	memcpy(s.login_table, started->login_table, started->login_table_len);
	s.login_table_len = started->login_table_len;
	s.worker_fd = worker_fd;
	s.lifeline_fd = lifeline_fd;
	s.self = getpid();

	/* The master's handlers write to its own pipe: none of them may run here. */
	authd_set_handler(SIGTERM, sup_on_signal, SA_RESTART);
	authd_set_handler(SIGINT, sup_on_signal, SA_RESTART);
	authd_set_handler(SIGCHLD, sup_on_signal, SA_RESTART | SA_NOCLDSTOP);
	authd_set_handler(SIGHUP, SIG_IGN, 0);	/* reloading is the master's business */
	authd_set_handler(SIGPIPE, SIG_IGN, 0);
	authd_set_handler(SIGALRM, SIG_DFL, 0);
	authd_set_handler(SIGUSR1, SIG_DFL, 0);
	authd_set_handler(SIGUSR2, SIG_DFL, 0);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NAME, "mailgated-authd");
	/* Orphans of dead workers come to us, so kill_orphans() can find them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* Belt and braces with the lifeline: a master killed outright stops us too. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(0);
	chan_close_all_but(keep, 2);
	log_set_prefix("authd");
	if (pipe2(sup_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("auth supervisor pipe: %s", strerror(errno));
		_exit(1);
	}
	/* Before any worker: they all share this one table, and it stays across restarts. */
	s.quota = auth_quota_create(AUTHD_QUOTA_SLOTS, s.max_requests, err, sizeof(err));
	if (s.quota == NULL) {
		log_error("auth supervisor: %s", err);
		_exit(1);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	supervisor_loop(&s);
}
