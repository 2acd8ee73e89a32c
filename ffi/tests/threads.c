// threads.c: threads share one model, each with its own context and sampler, and must produce the
// same greedy tokens as a single thread. Each thread also checks that its last error message is
// its own. The main thread frees the model handle after the threads created their contexts and
// before they generate, so the contexts' references keep the model alive across threads.
//
// Usage: threads MODEL N_THREADS MAX_TOKENS
//
// Prints a summary line; exits 1 when a thread's tokens differ or a call fails.

// pthread barriers are POSIX, which -std=c11 hides without this.
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyllm.h>

#define MAX_IDS 256

struct job {
    int index;
    const tinyllm_model *model;
    const tinyllm_token *prompt;
    size_t n_prompt;
    size_t max_tokens;
    pthread_barrier_t *contexts_ready;  // every context exists
    pthread_barrier_t *model_released;  // the main thread freed the model handle
    tinyllm_token ids[MAX_IDS];
    size_t count;
    int ok;
    char message[512];
};

static int32_t collect(tinyllm_token token, const char *piece, size_t piece_len, void *user_data) {
    (void)piece;
    (void)piece_len;
    struct job *job = user_data;
    if (job->count < MAX_IDS) {
        job->ids[job->count++] = token;
    }
    return 0;
}

static int fail(struct job *job, const char *call, tinyllm_status status) {
    snprintf(job->message, sizeof job->message, "%s failed: %s (%s)", call, tinyllm_last_error(),
             tinyllm_status_string(status));
    return 0;
}

// Creates a context and a greedy sampler, waits for the others, then generates.
static int generate(struct job *job, int wait) {
    tinyllm_context *context = NULL;
    tinyllm_sampler *sampler = NULL;
    tinyllm_sampler_params params = tinyllm_sampler_default_params();
    params.temperature = 0.0f;
    int ok = 0;

    tinyllm_status status = tinyllm_context_create(job->model, NULL, &context);
    if (status != TINYLLM_STATUS_OK) {
        fail(job, "tinyllm_context_create", status);
    }
    if (wait) {
        // Wait even after a failure, so that the other threads are not left waiting.
        pthread_barrier_wait(job->contexts_ready);
        pthread_barrier_wait(job->model_released);
    }
    if (context == NULL) {
        goto done;
    }

    status = tinyllm_sampler_create(&params, &sampler);
    if (status != TINYLLM_STATUS_OK) {
        fail(job, "tinyllm_sampler_create", status);
        goto done;
    }
    tinyllm_generate_result result;
    status = tinyllm_generate(context, sampler, job->prompt, job->n_prompt, job->max_tokens,
                              collect, NULL, job, &result);
    if (status != TINYLLM_STATUS_OK) {
        fail(job, "tinyllm_generate", status);
        goto done;
    }
    ok = 1;

done:
    tinyllm_sampler_free(sampler);
    tinyllm_context_free(context);
    return ok;
}

static void *thread_main(void *arg) {
    struct job *job = arg;
    // A failure with a message unique to this thread; checked again after the generation,
    // during which the other threads stored their own messages.
    tinyllm_layer_dims dims;
    int32_t layer = 1000 + job->index;
    char own[64];
    snprintf(own, sizeof own, "layer %d does not exist", layer);
    tinyllm_model_layer_dims(job->model, layer, &dims);

    job->ok = generate(job, 1);
    if (job->ok && strstr(tinyllm_last_error(), own) == NULL) {
        snprintf(job->message, sizeof job->message,
                 "last error \"%s\" is not this thread's \"%s\"", tinyllm_last_error(), own);
        job->ok = 0;
    }
    return NULL;
}

// Tokenizes the prompt as a user message in the chat template; returns a malloc'd array.
static tinyllm_token *chat_prompt(const tinyllm_model *model, const char *text, size_t *count) {
    tinyllm_chat_message message = {.role = "user", .content = text};
    char rendered[4096];
    size_t length = 0;
    tinyllm_status status = tinyllm_chat_apply_template(model, &message, 1, true, rendered,
                                                        sizeof rendered, &length);
    if (status != TINYLLM_STATUS_OK) {
        fprintf(stderr, "error: tinyllm_chat_apply_template failed: %s\n", tinyllm_last_error());
        return NULL;
    }
    tinyllm_token *tokens = malloc(1024 * sizeof *tokens);
    status = tinyllm_tokenize(model, rendered, length, false, tokens, 1024, count);
    if (status != TINYLLM_STATUS_OK) {
        fprintf(stderr, "error: tinyllm_tokenize failed: %s\n", tinyllm_last_error());
        free(tokens);
        return NULL;
    }
    return tokens;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: threads MODEL N_THREADS MAX_TOKENS\n");
        return 2;
    }
    int n_threads = atoi(argv[2]);
    size_t max_tokens = strtoul(argv[3], NULL, 10);
    if (n_threads < 1 || n_threads > 64 || max_tokens < 1 || max_tokens > MAX_IDS) {
        fprintf(stderr, "error: N_THREADS must be 1 to 64 and MAX_TOKENS 1 to %d\n", MAX_IDS);
        return 2;
    }
    tinyllm_model *model = NULL;
    if (tinyllm_model_load(argv[1], NULL, &model) != TINYLLM_STATUS_OK) {
        fprintf(stderr, "error: cannot load %s: %s\n", argv[1], tinyllm_last_error());
        return 1;
    }
    size_t n_prompt = 0;
    tinyllm_token *prompt = chat_prompt(model, "Tell me a story about a lighthouse.", &n_prompt);
    if (prompt == NULL) {
        tinyllm_model_free(model);
        return 1;
    }

    // The reference: one thread, no concurrency.
    struct job reference = {.index = -1, .model = model, .prompt = prompt, .n_prompt = n_prompt,
                            .max_tokens = max_tokens};
    if (!generate(&reference, 0)) {
        fprintf(stderr, "error: single-thread reference: %s\n", reference.message);
        return 1;
    }

    pthread_barrier_t contexts_ready, model_released;
    pthread_barrier_init(&contexts_ready, NULL, (unsigned)n_threads + 1);
    pthread_barrier_init(&model_released, NULL, (unsigned)n_threads + 1);
    struct job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *threads = calloc((size_t)n_threads, sizeof *threads);
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (struct job){.index = i, .model = model, .prompt = prompt, .n_prompt = n_prompt,
                               .max_tokens = max_tokens, .contexts_ready = &contexts_ready,
                               .model_released = &model_released};
        if (pthread_create(&threads[i], NULL, thread_main, &jobs[i]) != 0) {
            fprintf(stderr, "error: cannot start thread %d\n", i);
            return 1;
        }
    }
    pthread_barrier_wait(&contexts_ready);
    tinyllm_model_free(model);  // the contexts hold the model from here on
    pthread_barrier_wait(&model_released);

    int failed = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(threads[i], NULL);
        struct job *job = &jobs[i];
        if (!job->ok) {
            fprintf(stderr, "thread %d: %s\n", i, job->message);
            failed++;
        } else if (job->count != reference.count ||
                   memcmp(job->ids, reference.ids, reference.count * sizeof(tinyllm_token)) != 0) {
            fprintf(stderr, "thread %d: %zu tokens that differ from the single thread's %zu\n", i,
                    job->count, reference.count);
            failed++;
        }
    }
    printf("threads: %d threads, %zu tokens each", n_threads, reference.count);
    printf("; ids:");
    for (size_t i = 0; i < reference.count; i++) {
        printf(" %d", reference.ids[i]);
    }
    printf("\nthreads: %d matched, %d failed\n", n_threads - failed, failed);

    pthread_barrier_destroy(&contexts_ready);
    pthread_barrier_destroy(&model_released);
    free(threads);
    free(jobs);
    free(prompt);
    return failed == 0 ? 0 : 1;
}
