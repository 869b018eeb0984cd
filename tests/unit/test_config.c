/* Table tests for flag parsing: every accepted form and every error wording that matters. */
#include "check.h"
#include "pushgate/common.h"
#include "pushgate/config.h"

#include <stdlib.h>

#define MAX_ARGS 16

struct parse_case {
    const char *args[MAX_ARGS]; /* NULL-terminated, without argv[0] */
    int expect;                 /* pg_config_action or PG_ERR_INVALID (as run_parse folds them) */
    const char *err_contains;   /* for errors: part of the one-line message */
};

static const struct parse_case cases[] = {
    {{"-u", "http://127.0.0.1:8080"}, PG_CONFIG_RUN, NULL},
    {{"--upstream", "http://backend"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://[::1]:81/"}, PG_CONFIG_RUN, NULL},
    {{"--demo"}, PG_CONFIG_RUN, NULL},
    {{"--help"}, PG_CONFIG_HELP, NULL},
    {{"-V"}, PG_CONFIG_VERSION, NULL},
    {{}, PG_ERR_INVALID, "no upstream"},
    {{"--demo", "-u", "http://a:1"}, PG_ERR_INVALID, "exclude"},
    {{"-u", "https://a:1"}, PG_ERR_INVALID, "only http://"},
    {{"-u", "http://a:1/path"}, PG_ERR_INVALID, "no path"},
    {{"-u", "http://user@a:1"}, PG_ERR_INVALID, "no path"},
    {{"-u", "http://a:99999"}, PG_ERR_INVALID, "host and port"},
    {{"-u", "http://a:"}, PG_ERR_INVALID, "host and port"},
    {{"-u", "http://a:1", "--bogus"}, PG_ERR_INVALID, "unknown option '--bogus'"},
    {{"-u", "http://a:1", "--workers"}, PG_ERR_INVALID, "needs a value"},
    {{"-u", "http://a:1", "--workers", "0"}, PG_ERR_INVALID, "--workers '0'"},
    {{"-u", "http://a:1", "--workers", "4"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--workers", "4x"}, PG_ERR_INVALID, "--workers"},
    {{"-u", "http://a:1", "--tls-cert", "c.pem"}, PG_ERR_INVALID, "together"},
    {{"-u", "http://a:1", "--tls-key", "k.pem"}, PG_ERR_INVALID, "together"},
    {{"-u", "http://a:1", "-l", "127.0.0.1:0"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "-l", "[::1]:8443"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "-l", "*:8443"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "-l", "::1:8443"}, PG_ERR_INVALID, "--listen '::1:8443'"},
    {{"-u", "http://a:1", "-l", "host"}, PG_ERR_INVALID, "--listen 'host'"},
    {{"-u", "http://a:1", "-l", "host:70000"}, PG_ERR_INVALID, "--listen"},
    {{"-u", "http://a:1", "--log-level", "debug"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--log-level", "loud"}, PG_ERR_INVALID, "--log-level 'loud'"},
    {{"-u", "http://a:1", "--upstream-timeout", "250ms"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--upstream-timeout", "0"}, PG_ERR_INVALID, "--upstream-timeout"},
    {{"-u", "http://a:1", "--upstream-connect-timeout", "5x"}, PG_ERR_INVALID, "duration"},
    {{"-u", "http://a:1", "--max-concurrent-streams", "0"}, PG_ERR_INVALID, "1..65536"},
    {{"-u", "http://a:1", "--max-pushes-per-response", "0"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--no-push", "--push-copy-cookies"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--abuse-budget", "5"}, PG_ERR_INVALID, "--abuse-budget '5'"},
    {{"-u", "http://a:1", "--abuse-budget", "50", "--abuse-refill", "0"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--abuse-refill", "-1"}, PG_ERR_INVALID, "--abuse-refill"},
    {{"-u", "http://a:1", "--upstream-queue", "0"}, PG_CONFIG_RUN, NULL},
    {{"-u", "http://a:1", "--request-timeout", "0"}, PG_ERR_INVALID, "--request-timeout"},
    {{"-u", "http://a:1", "extra"}, PG_ERR_INVALID, "unexpected argument 'extra'"},
};

static int run_parse(const char *const *args, struct pg_config *cfg, char *err, size_t len)
{
    char *argv[MAX_ARGS + 2] = {"pushgate"};
    int argc = 1;
    while (argc <= MAX_ARGS && args[argc - 1])
        argv[argc] = (char *)args[argc - 1], argc++;
    argv[argc] = NULL;
    const enum pg_config_action unset = (enum pg_config_action)77;
    enum pg_config_action action = unset;
    int rv = pg_config_parse(cfg, argc, argv, &action, err, len);
    if (rv != PG_OK) {
        CHECK(rv == PG_ERR_INVALID && action == unset, "rv=%d action=%d", rv, (int)action);
        return rv;
    }
    return (int)action;
}

static void test_table(void)
{
    for (size_t i = 0; i < PG_ARRAY_LEN(cases); i++) {
        struct pg_config cfg;
        char err[512] = "";
        int rv = run_parse(cases[i].args, &cfg, err, sizeof(err));
        CHECK(rv == cases[i].expect, "case %zu (%s): got %d, err '%s'", i,
              cases[i].args[0] ? cases[i].args[0] : "", rv, err);
        if (cases[i].err_contains)
            CHECK(strstr(err, cases[i].err_contains) != NULL, "case %zu: error '%s' lacks '%s'", i,
                  err, cases[i].err_contains);
    }
}

static void test_values(void)
{
    struct pg_config cfg;
    char err[512];
    const char *args[] = {"-u",     "http://[::1]:81/",   "-l", "[::1]:0", "-l",
                          "*:9000", "--upstream-timeout", "2m", NULL};
    CHECK(run_parse(args, &cfg, err, sizeof(err)) == PG_CONFIG_RUN, "%s", err);
    CHECK(strcmp(cfg.upstream_origin, "http://[::1]:81") == 0, "%s", cfg.upstream_origin);
    CHECK(strcmp(cfg.upstream_host, "::1") == 0, "%s", cfg.upstream_host);
    CHECK(cfg.upstream_port == 81, "%u", cfg.upstream_port);
    CHECK(cfg.listen_count == 2, "%zu", cfg.listen_count);
    CHECK(strcmp(cfg.listen[0].host, "::1") == 0, "%s", cfg.listen[0].host);
    CHECK(strcmp(cfg.listen[1].host, "0.0.0.0") == 0, "%s", cfg.listen[1].host);
    CHECK(cfg.upstream_timeout_ms == 120000, "%u", cfg.upstream_timeout_ms);
    CHECK(cfg.push_enabled && cfg.max_pushes_per_response == 16, "push defaults");

    const char *defaults[] = {"-u", "http://backend", NULL};
    CHECK(run_parse(defaults, &cfg, err, sizeof(err)) == PG_CONFIG_RUN, "%s", err);
    CHECK(strcmp(cfg.upstream_origin, "http://backend:80") == 0, "%s", cfg.upstream_origin);
    CHECK(cfg.listen_count == 1 && strcmp(cfg.listen[0].port, "8080") == 0, "default listen");
    CHECK(cfg.abuse_budget == 1000 && cfg.abuse_refill == 100, "abuse budget defaults");
}

static void test_durations(void)
{
    static const struct {
        const char *text;
        bool ok;
        unsigned ms;
    } table[] = {
        {"1", true, 1000},
        {"250ms", true, 250},
        {"5s", true, 5000},
        {"2m", true, 120000},
        {"1h", true, 3600000},
        {"720h", true, 2592000000U},
        {"0", false, 0},
        {"", false, 0},
        {"-1", false, 0},
        {"1d", false, 0},
        {"721h", false, 0},
        {"s", false, 0},
        {"99999999999999", false, 0},
    };
    for (size_t i = 0; i < PG_ARRAY_LEN(table); i++) {
        unsigned ms = 0;
        bool ok = pg_config_parse_duration(table[i].text, &ms);
        CHECK(ok == table[i].ok && (!ok || ms == table[i].ms), "'%s' -> %d %u", table[i].text, ok,
              ms);
    }
}

int main(void)
{
    test_table();
    test_values();
    test_durations();
    return check_report("test_config");
}
