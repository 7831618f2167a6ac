/*
 * call.c - pxctl call SERVICE METHOD 'JSON': any method of a service, by hand.
 *
 * The request is proto3 JSON (the argument, or stdin with "-") and so is the
 * answer, through the runtime's transcoder (phuxanh/json.h), the same one the
 * gateway speaks Connect with: what works here works over HTTP, and an error
 * names the field as the gateway would (`events[0].stage: ...`). --proto reads the
 * request from stdin and writes the answer to stdout as protobuf bytes, for
 * scripts that hold messages rather than JSON.
 *
 * Methods are found in the generated service descriptors, so a method added to
 * a proto needs nothing here. Every server also serves Health and Metrics on the
 * same endpoint; their methods (Check, GetMetrics) are found after the service's
 * own. A call is never retried (pxctl cannot know whether a method is idempotent:
 * protobuf-c keeps no method options), so it is sent exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "call.h"
#include "phuxanh/health/v1/health.pb-c.h"
#include "phuxanh/json.h"
#include "phuxanh/metrics/v1/metrics.pb-c.h"
#include "pxctl.h"

/* A JSON request is larger than its protobuf (names, quotes, base64), and a service refuses
 * past PX_RPC_MAX_MESSAGE_DEFAULT on the wire: four times that is room for any JSON that can
 * become an acceptable message, and a bound on what a mistaken pipe makes us read. */
#define CALL_MAX_JSON (4u * PX_RPC_MAX_MESSAGE_DEFAULT)
/* Longest "/package.Service/Method" path. */
#define CALL_PATH_MAX 256

static const pxctl_option_t s_options[] = {
    {{"proto", NULL, "off",
      "binary protobuf: the request from stdin, the answer to stdout (no JSON argument)"},
     PXCTL_SWITCH,
     0},
    {{"list", NULL, "off", "list SERVICE's methods with their message types, and stop"},
     PXCTL_SWITCH,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "call",
    .synopsis = "SERVICE METHOD [JSON | -]",
    .summary = "call any method of a service, JSON in and out",
    .details =
        "SERVICE is roster or activation; METHOD a method of its service by name (GetProgress),\n"
        "or Check (Health) or GetMetrics (Metrics), which every service also serves.\n"
        "JSON is the request in proto3 JSON (lowerCamelCase or proto field names); \"-\" reads\n"
        "it from stdin; without it the request is {}. The answer is printed as JSON (indented\n"
        "on a terminal, one line otherwise). On an error the status code's name and message\n"
        "go to stderr with the call's request id, and the exit status is 1 (3 when the\n"
        "service could not be reached).\n\n"
        "Examples:\n"
        "  pxctl call activation GetProgress '{\"campaignId\":\"tn-cuoi-tuan-2023\","
        "\"unitCode\":\"725\"}'\n"
        "  pxctl call roster ListCampaigns\n"
        "  pxctl call --proto roster GetUnits < request.bin > answer.bin\n"
        "  pxctl call --list activation",
    .options = s_options,
    .common = PXCTL_COMMON_SERVICES,
    .min_args = 1,
    .max_args = 3,
};

/* The service's own descriptor, then those every server serves beside it. */
static const ProtobufCMethodDescriptor *s_method(const pxctl_service_t *svc, const char *name,
                                                 const ProtobufCServiceDescriptor **owner)
{
    const ProtobufCServiceDescriptor *descs[] = {svc->descriptor,
                                                 &phuxanh__health__v1__health__descriptor,
                                                 &phuxanh__metrics__v1__metrics__descriptor};
    for (size_t d = 0; d < sizeof descs / sizeof *descs; d++) {
        const ProtobufCMethodDescriptor *m =
            protobuf_c_service_descriptor_get_method_by_name(descs[d], name);
        if (m) {
            *owner = descs[d];
            return m;
        }
    }
    /* getprogress, GETPROGRESS: what a person typing probably meant, if it is unique */
    const ProtobufCMethodDescriptor *found = NULL;
    int matches = 0;
    for (size_t d = 0; d < sizeof descs / sizeof *descs; d++) {
        for (unsigned i = 0; i < descs[d]->n_methods; i++) {
            if (strcasecmp(descs[d]->methods[i].name, name) == 0) {
                found = &descs[d]->methods[i];
                *owner = descs[d];
                matches++;
            }
        }
    }
    return matches == 1 ? found : NULL;
}

static void s_list(const pxctl_service_t *svc)
{
    const ProtobufCServiceDescriptor *descs[] = {svc->descriptor,
                                                 &phuxanh__health__v1__health__descriptor,
                                                 &phuxanh__metrics__v1__metrics__descriptor};
    size_t w = 0;
    for (size_t d = 0; d < sizeof descs / sizeof *descs; d++) {
        for (unsigned i = 0; i < descs[d]->n_methods; i++) {
            size_t n = strlen(descs[d]->methods[i].name);
            w = n > w ? n : w;
        }
    }
    for (size_t d = 0; d < sizeof descs / sizeof *descs; d++) {
        for (unsigned i = 0; i < descs[d]->n_methods; i++) {
            const ProtobufCMethodDescriptor *m = &descs[d]->methods[i];
            printf("%-*s  %s -> %s\n", (int)w, m->name, m->input->name, m->output->name);
        }
    }
}

/* Writes compact JSON text indented by two spaces per level. Only the structure is touched
 * (strings and numbers are copied as they are), so nothing is re-formatted or lost. */
static void s_pretty(FILE *out, const char *s, size_t len)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            fputc(c, out);
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = true;
            fputc(c, out);
            break;
        case '{':
        case '[':
            if (i + 1 < len && (s[i + 1] == '}' || s[i + 1] == ']')) {
                fputc(c, out);
                fputc(s[++i], out);
                break;
            }
            depth++;
            fprintf(out, "%c\n%*s", c, 2 * depth, "");
            break;
        case '}':
        case ']':
            depth--;
            fprintf(out, "\n%*s%c", 2 * (depth > 0 ? depth : 0), "", c);
            break;
        case ',':
            fprintf(out, ",\n%*s", 2 * depth, "");
            break;
        case ':':
            fputs(": ", out);
            break;
        default:
            fputc(c, out);
        }
    }
    fputc('\n', out);
}

int pxctl_call_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    px_rpc_client_t *client = NULL;
    ProtobufCMessage *request = NULL, *reply = NULL;
    char *input = NULL, *text = NULL;
    uint8_t *packed = NULL;
    size_t input_len = 0;
    px_status_t st;

    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    bool proto = pxctl_on(args.cfg, "proto");
    const pxctl_service_t *svc = pxctl_service_find(args.pos[0]);
    if (!svc) {
        pxctl_err(s_cmd.name, "SERVICE: '%.64s' is not roster or activation", args.pos[0]);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (pxctl_on(args.cfg, "list")) {
        s_list(svc);
        rc = PXCTL_EXIT_OK;
        goto done;
    }
    if (args.npos < 2) {
        pxctl_err(s_cmd.name, "missing arguments: expected %s (see --help)", s_cmd.synopsis);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    const ProtobufCServiceDescriptor *owner = NULL;
    const ProtobufCMethodDescriptor *m = s_method(svc, args.pos[1], &owner);
    if (!m) {
        pxctl_err(s_cmd.name, "METHOD: %s has no method '%.64s' (pxctl call --list %s)", svc->name,
                  args.pos[1], svc->name);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (proto && args.npos > 2) {
        pxctl_err(s_cmd.name, "--proto reads the request from stdin: no JSON argument");
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }

    if (proto || (args.npos > 2 && strcmp(args.pos[2], "-") == 0)) {
        size_t max = proto ? PX_RPC_MAX_MESSAGE_DEFAULT : CALL_MAX_JSON;
        if (pxctl_read_fd(0, max, &input, &input_len) != 0) {
            pxctl_err(s_cmd.name, "reading the request from stdin: %s",
                      errno == EFBIG ? "larger than the largest message" : strerror(errno));
            goto done;
        }
    }
    if (proto) {
        request = protobuf_c_message_unpack(m->input, NULL, input_len, (const uint8_t *)input);
        if (!request) {
            pxctl_err(s_cmd.name, "stdin is not a %s in protobuf (%zu bytes)", m->input->name,
                      input_len);
            goto done;
        }
    } else {
        const char *json = input ? input : args.npos > 2 ? args.pos[2] : "{}";
        request = px_json_to_message(m->input, json, strlen(json), &st);
        if (!request) {
            pxctl_err(s_cmd.name, "%s: %s", px_code_name(st.code), st.message);
            goto done;
        }
    }

    char path[CALL_PATH_MAX];
    snprintf(path, sizeof path, "/%s/%s", owner->name, m->name);
    client = pxctl_client_new(args.cfg, args.curve, svc, NULL, 0, s_cmd.name);
    if (!client) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    rc = pxctl_call(client, args.cfg, s_cmd.name, path, request, m->output, false, &reply);
    if (rc != PXCTL_EXIT_OK) {
        goto done;
    }
    rc = PXCTL_EXIT_FAILED;
    if (proto) {
        size_t n = protobuf_c_message_get_packed_size(reply);
        packed = malloc(n ? n : 1);
        if (!packed) {
            pxctl_err(s_cmd.name, "out of memory");
            goto done;
        }
        protobuf_c_message_pack(reply, packed);
        if (pxctl_write_all(1, packed, n) != 0) {
            pxctl_err(s_cmd.name, "writing the answer: %s", strerror(errno));
            goto done;
        }
    } else {
        size_t len = 0;
        text = px_json_from_message(reply, &len, &st);
        if (!text) {
            pxctl_err(s_cmd.name, "%s: the answer cannot be written as JSON: %s",
                      px_code_name(st.code), st.message);
            goto done;
        }
        if (isatty(1)) {
            s_pretty(stdout, text, len);
        } else {
            fwrite(text, 1, len, stdout);
            fputc('\n', stdout);
        }
        if (fflush(stdout) != 0) {
            pxctl_err(s_cmd.name, "writing the answer: %s", strerror(errno));
            goto done;
        }
    }
    rc = PXCTL_EXIT_OK;

done:
    free(text);
    free(packed);
    free(input);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    if (request) {
        protobuf_c_message_free_unpacked(request, NULL);
    }
    px_rpc_client_destroy(&client);
    pxctl_args_free(&args);
    return rc;
}
