// generate.c: streams a model's answer to one prompt through the tinyllm C API.
//
// Usage: generate [options] MODEL PROMPT
//
// The prompt becomes a user message in the model's chat template, and the answer is decoded
// greedily unless --temperature is given. The text goes to standard output as it is generated.
//
// Options:
//   -n N               maximum number of tokens to generate (default 256)
//   --temperature T    sampling temperature; 0 selects greedy decoding (default 0)
//   --seed S           seed of the sampler (default 0)
//   --context N        context length in tokens; 0 selects the model's maximum (default 4096)
//   --system TEXT      system message placed before the prompt
//   --raw              tokenize PROMPT as it is, with the tokenizer's special tokens, instead of
//                      wrapping it in the chat template
//   --ids              print the prompt's and the answer's token ids to standard error
//   --verbose          print the model's dimensions and the stop reason to standard error
//
// Exit status: 0 on success, 1 when a tinyllm call fails, 2 for invalid arguments.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyllm.h>

// Prints the failed call, the status and the library's message; returns 0 on failure.
static int check(tinyllm_status status, const char *call) {
    if (status == TINYLLM_STATUS_OK) {
        return 1;
    }
    fprintf(stderr, "error: %s failed: %s (%s)\n", call, tinyllm_last_error(),
            tinyllm_status_string(status));
    return 0;
}

// Generated token ids, collected by the token callback.
struct token_list {
    tinyllm_token *ids;
    size_t count;
    size_t capacity;
};

static int32_t print_piece(tinyllm_token token, const char *piece, size_t piece_len,
                           void *user_data) {
    struct token_list *list = user_data;
    fwrite(piece, 1, piece_len, stdout);
    fflush(stdout);
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        tinyllm_token *grown = realloc(list->ids, capacity * sizeof *grown);
        if (grown == NULL) {
            fprintf(stderr, "error: out of memory for the token list\n");
            return 1;  // stop generating
        }
        list->ids = grown;
        list->capacity = capacity;
    }
    list->ids[list->count++] = token;
    return 0;
}

static void print_ids(const char *label, const tinyllm_token *ids, size_t count) {
    fprintf(stderr, "%s:", label);
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, " %d", ids[i]);
    }
    fprintf(stderr, "\n");
}

// Renders the conversation with the chat template; returns a malloc'd string or NULL.
static char *render_chat(const tinyllm_model *model, const char *system, const char *prompt,
                         size_t *text_len) {
    tinyllm_chat_message messages[2];
    size_t count = 0;
    if (system != NULL) {
        messages[count++] = (tinyllm_chat_message){.role = "system", .content = system};
    }
    messages[count++] = (tinyllm_chat_message){.role = "user", .content = prompt};

    // First call: ask for the length. A text always needs a byte for its NUL, so an empty
    // buffer is always too small.
    tinyllm_status status =
        tinyllm_chat_apply_template(model, messages, count, true, NULL, 0, text_len);
    if (status != TINYLLM_STATUS_BUFFER_TOO_SMALL) {
        check(status, "tinyllm_chat_apply_template");
        return NULL;
    }
    char *text = malloc(*text_len + 1);
    if (text == NULL) {
        fprintf(stderr, "error: out of memory for the prompt text\n");
        return NULL;
    }
    status = tinyllm_chat_apply_template(model, messages, count, true, text, *text_len + 1,
                                         text_len);
    if (!check(status, "tinyllm_chat_apply_template")) {
        free(text);
        return NULL;
    }
    return text;
}

// Tokenizes text; returns a malloc'd array (NULL on failure) and its length in *count.
static tinyllm_token *tokenize(const tinyllm_model *model, const char *text, size_t text_len,
                               bool add_special, size_t *count) {
    tinyllm_status status = tinyllm_tokenize(model, text, text_len, add_special, NULL, 0, count);
    if (status == TINYLLM_STATUS_OK) {
        fprintf(stderr, "error: the prompt encodes to no tokens; give a non-empty prompt\n");
        return NULL;
    }
    if (status != TINYLLM_STATUS_BUFFER_TOO_SMALL) {
        check(status, "tinyllm_tokenize");
        return NULL;
    }
    tinyllm_token *tokens = malloc(*count * sizeof *tokens);
    if (tokens == NULL) {
        fprintf(stderr, "error: out of memory for %zu tokens\n", *count);
        return NULL;
    }
    status = tinyllm_tokenize(model, text, text_len, add_special, tokens, *count, count);
    if (!check(status, "tinyllm_tokenize")) {
        free(tokens);
        return NULL;
    }
    return tokens;
}

static void print_model(const tinyllm_model *model, const tinyllm_context *context) {
    fprintf(stderr, "model: %s, %d layers, hidden %d, vocabulary %d, %.1f M parameters\n",
            tinyllm_model_architecture(model), tinyllm_model_n_layers(model),
            tinyllm_model_hidden_dim(model), tinyllm_model_n_vocab(model),
            (double)tinyllm_model_n_params(model) / 1e6);
    tinyllm_layer_dims dims;
    if (check(tinyllm_model_layer_dims(model, 0, &dims), "tinyllm_model_layer_dims")) {
        fprintf(stderr, "layer 0: %d heads, %d KV heads, head dim %d, FFN %d\n", dims.n_heads,
                dims.n_kv_heads, dims.head_dim, dims.ffn_dim);
    }
    fprintf(stderr, "context: %d of %d tokens\n", tinyllm_context_n_ctx(context),
            tinyllm_model_max_context(model));
}

static const char *stop_reason_text(tinyllm_stop_reason reason) {
    switch (reason) {
    case TINYLLM_STOP_EOS: return "end-of-sequence token";
    case TINYLLM_STOP_MAX_TOKENS: return "maximum tokens";
    case TINYLLM_STOP_CALLBACK: return "stopped by the callback";
    case TINYLLM_STOP_CONTEXT_FULL: return "context full";
    case TINYLLM_STOP_ABORTED: return "aborted";
    }
    return "unknown";
}

static void usage(void) {
    fprintf(stderr, "usage: generate [-n N] [--temperature T] [--seed S] [--context N] "
                    "[--system TEXT] [--raw] [--ids] [--verbose] MODEL PROMPT\n");
}

int main(int argc, char **argv) {
    size_t max_tokens = 256;
    tinyllm_sampler_params sampler_params = tinyllm_sampler_default_params();
    sampler_params.temperature = 0.0f;
    tinyllm_context_params context_params = tinyllm_context_default_params();
    const char *system = NULL;
    bool raw = false, show_ids = false, verbose = false;
    const char *positional[2];
    int n_positional = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "-n") == 0 && has_value) {
            max_tokens = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(arg, "--temperature") == 0 && has_value) {
            sampler_params.temperature = strtof(argv[++i], NULL);
        } else if (strcmp(arg, "--seed") == 0 && has_value) {
            sampler_params.seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(arg, "--context") == 0 && has_value) {
            context_params.n_ctx = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(arg, "--system") == 0 && has_value) {
            system = argv[++i];
        } else if (strcmp(arg, "--raw") == 0) {
            raw = true;
        } else if (strcmp(arg, "--ids") == 0) {
            show_ids = true;
        } else if (strcmp(arg, "--verbose") == 0) {
            verbose = true;
        } else if (arg[0] != '-' && n_positional < 2) {
            positional[n_positional++] = arg;
        } else {
            fprintf(stderr, "error: unknown or incomplete option %s\n", arg);
            usage();
            return 2;
        }
    }
    if (n_positional != 2) {
        usage();
        return 2;
    }
    const char *model_path = positional[0];
    const char *prompt = positional[1];

    int exit_code = 1;
    tinyllm_model *model = NULL;
    tinyllm_context *context = NULL;
    tinyllm_sampler *sampler = NULL;
    char *text = NULL;
    tinyllm_token *prompt_ids = NULL;
    struct token_list answer = {0};

    if (!check(tinyllm_model_load(model_path, NULL, &model), "tinyllm_model_load")) {
        goto done;
    }
    size_t text_len = strlen(prompt);
    if (!raw) {
        text = render_chat(model, system, prompt, &text_len);
        if (text == NULL) {
            goto done;
        }
    }
    size_t n_prompt = 0;
    prompt_ids = tokenize(model, raw ? prompt : text, text_len, raw, &n_prompt);
    if (prompt_ids == NULL) {
        goto done;
    }
    if (!check(tinyllm_context_create(model, &context_params, &context),
               "tinyllm_context_create") ||
        !check(tinyllm_sampler_create(&sampler_params, &sampler), "tinyllm_sampler_create")) {
        goto done;
    }
    if (verbose) {
        print_model(model, context);
    }

    tinyllm_generate_result result;
    tinyllm_status status = tinyllm_generate(context, sampler, prompt_ids, n_prompt, max_tokens,
                                             print_piece, NULL, &answer, &result);
    printf("\n");
    if (!check(status, "tinyllm_generate")) {
        goto done;
    }
    if (show_ids) {
        print_ids("prompt ids", prompt_ids, n_prompt);
        print_ids("ids", answer.ids, answer.count);
    }
    if (verbose) {
        fprintf(stderr, "stopped after %zu tokens: %s\n", result.n_generated,
                stop_reason_text(result.stop_reason));
    }
    exit_code = 0;

done:
    free(answer.ids);
    free(prompt_ids);
    free(text);
    tinyllm_sampler_free(sampler);
    tinyllm_context_free(context);
    tinyllm_model_free(model);
    return exit_code;
}
