/* word-count: one C activity function, built two ways (DESIGN.md section 7). As a program, it is
 * a process activity of durabled.activity(5): dur_activity_main() reads {"text": "..."} as JSON on
 * stdin and prints {"words": N, "lines": N} on stdout. The same word_count() could be registered
 * with a dur_worker to run in-process. A unit for it:
 *
 *     [Activity]
 *     ExecStart=/usr/local/bin/word-count
 *     StartToCloseSec=1min
 *
 * Input that is not {"text": string} fails for good (type BadInput, non-retryable). Every 1000
 * lines it heartbeats its progress; when the daemon cancels it (SIGTERM), the heartbeat returns
 * DUR_CANCELED and it stops. */

#include <ctype.h>
#include <durable/durable.h>
#include <string.h>

static int word_count(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *text = NULL;
        unsigned long words = 0, lines = 0;
        bool in_word = false;

        if (dur_unpack(in, "{s:s}", "text", &text) < 0)
                return dur_actx_fail(ctx, "BadInput", true, "input must be {\"text\": string}");
        for (const char *p = text; *p; p++) {
                if (*p == '\n' && ++lines % 1000 == 0 &&
                    dur_actx_heartbeat(ctx, dur_args("{s:U}", "lines", (uint64_t) lines)) ==
                            DUR_CANCELED)
                        return DUR_CANCELED;
                if (isspace((unsigned char) *p))
                        in_word = false;
                else if (!in_word) {
                        in_word = true;
                        words++;
                }
        }
        return dur_pack(out, "{s:U, s:U}", "words", (uint64_t) words, "lines", (uint64_t) lines);
}

static const dur_activity_def word_count_def = { "word_count", word_count };

int main(int argc, char *argv[]) {
        return dur_activity_main(&word_count_def, argc, argv);
}
