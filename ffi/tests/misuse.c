// misuse.c: the C API under wrong use. NULL handles and arguments on every function, short
// buffers, out-of-range values, files that are not models, a context that outlives its model,
// and generation stopped or aborted from its callbacks. Every call must return the documented
// status and message and never crash; the test runs plain and under AddressSanitizer and
// UndefinedBehaviorSanitizer.
//
// Usage: misuse MODEL SCRATCH_DIR
//   MODEL        a .tllm model with a tokenizer and a chat template
//   SCRATCH_DIR  an existing folder for the broken model files the test writes
//
// Prints one line per failed check and a summary; exits 1 when any check failed.

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyllm.h>

static int checks = 0;
static int failures = 0;

static void fail(int line, const char *format, const char *detail) {
    fprintf(stderr, "misuse.c:%d: ", line);
    fprintf(stderr, format, detail);
    fprintf(stderr, "\n");
    failures++;
}

// Checks a status and, for a failure, that the last error contains `message`.
static void expect_status(tinyllm_status got, tinyllm_status expected, const char *message,
                          const char *call, int line) {
    checks++;
    if (got != expected) {
        fprintf(stderr, "misuse.c:%d: %s returned %d (%s), expected %d (%s); last error: %s\n",
                line, call, (int)got, tinyllm_status_string(got), (int)expected,
                tinyllm_status_string(expected), tinyllm_last_error());
        failures++;
        return;
    }
    if (expected != TINYLLM_STATUS_OK && message != NULL &&
        strstr(tinyllm_last_error(), message) == NULL) {
        fprintf(stderr, "misuse.c:%d: %s: last error \"%s\" does not contain \"%s\"\n", line, call,
                tinyllm_last_error(), message);
        failures++;
    }
}

#define EXPECT_STATUS(call, expected, message) \
    expect_status((call), (expected), (message), #call, __LINE__)
#define EXPECT_OK(call) expect_status((call), TINYLLM_STATUS_OK, NULL, #call, __LINE__)
#define EXPECT(condition)                                   \
    do {                                                    \
        checks++;                                           \
        if (!(condition)) {                                 \
            fail(__LINE__, "expected %s", #condition);      \
        }                                                   \
    } while (0)

// A pointer value that is not NULL, to check that failed constructors store NULL.
#define NOT_NULL_MARK ((void *)(uintptr_t)0x10)

static const tinyllm_status INVALID = TINYLLM_STATUS_INVALID_ARGUMENT;

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return NULL;
    }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)length + 1);
    if (bytes != NULL && fread(bytes, 1, (size_t)length, file) != (size_t)length) {
        free(bytes);
        bytes = NULL;
    }
    fclose(file);
    *size = (size_t)length;
    return bytes;
}

static int write_file(const char *path, const void *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        return 0;
    }
    int ok = fwrite(bytes, 1, size, file) == size;
    return fclose(file) == 0 && ok;
}

static void check_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", TINYLLM_VERSION_MAJOR, TINYLLM_VERSION_MINOR,
             TINYLLM_VERSION_PATCH);
    EXPECT(strcmp(tinyllm_version(), expected) == 0);
    EXPECT(tinyllm_abi_version() == TINYLLM_ABI_VERSION);
    for (int status = TINYLLM_STATUS_OK; status <= TINYLLM_STATUS_INTERNAL; status++) {
        EXPECT(strcmp(tinyllm_status_string(status), "unknown status") != 0);
    }
    EXPECT(strcmp(tinyllm_status_string(TINYLLM_STATUS_CONTEXT_FULL), "context full") == 0);
    EXPECT(strcmp(tinyllm_status_string(-1), "unknown status") == 0);
    EXPECT(strcmp(tinyllm_status_string(1000), "unknown status") == 0);
}

static void check_bad_files(const char *model_path, const char *scratch) {
    tinyllm_model *model = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_model_load(NULL, NULL, &model), INVALID, "path is NULL");
    EXPECT(model == NULL);
    EXPECT_STATUS(tinyllm_model_load(model_path, NULL, NULL), INVALID, "model is NULL");

    model = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_model_load("/nonexistent/model.tllm", NULL, &model), TINYLLM_STATUS_IO,
                  "/nonexistent/model.tllm");
    EXPECT(model == NULL);
    EXPECT_STATUS(tinyllm_model_load(scratch, NULL, &model), TINYLLM_STATUS_IO, scratch);

    // A file name that is not UTF-8 is still a valid Unix path.
    char path[4096];
    snprintf(path, sizeof path, "%s/caf\xe9.tllm", scratch);
    size_t model_size = 0;
    unsigned char *model_bytes = read_file(model_path, &model_size);
    EXPECT(model_bytes != NULL && write_file(path, model_bytes, model_size));
    free(model_bytes);
    EXPECT_OK(tinyllm_model_load(path, NULL, &model));
    tinyllm_model_free(model);

    snprintf(path, sizeof path, "%s/not-a-model.tllm", scratch);
    const char text[] = "this is a text file, not a model";
    EXPECT(write_file(path, text, sizeof text));
    model = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_model_load(path, NULL, &model), TINYLLM_STATUS_INVALID_MODEL, "magic");
    EXPECT(model == NULL);

    snprintf(path, sizeof path, "%s/empty.tllm", scratch);
    EXPECT(write_file(path, "", 0));
    EXPECT_STATUS(tinyllm_model_load(path, NULL, &model), TINYLLM_STATUS_INVALID_MODEL, NULL);

    size_t size = 0;
    unsigned char *bytes = read_file(model_path, &size);
    EXPECT(bytes != NULL && size > 4096);
    if (bytes == NULL) {
        return;
    }
    snprintf(path, sizeof path, "%s/truncated.tllm", scratch);
    EXPECT(write_file(path, bytes, size / 2));
    EXPECT_STATUS(tinyllm_model_load(path, NULL, &model), TINYLLM_STATUS_INVALID_MODEL, NULL);
    EXPECT_STATUS(tinyllm_model_load_from_memory(bytes, size / 2, NULL, &model),
                  TINYLLM_STATUS_INVALID_MODEL, NULL);

    // A changed byte in the last tensor passes a plain load and fails tensor verification.
    unsigned char *corrupt = malloc(size);
    memcpy(corrupt, bytes, size);
    corrupt[size - 1] ^= 0x40;
    tinyllm_model_params verify = tinyllm_model_default_params();
    EXPECT(!verify.verify_tensors);
    verify.verify_tensors = true;
    model = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_model_load_from_memory(corrupt, size, &verify, &model),
                  TINYLLM_STATUS_INVALID_MODEL, "checksum");
    EXPECT(model == NULL);
    EXPECT_OK(tinyllm_model_load_from_memory(corrupt, size, NULL, &model));
    tinyllm_model_free(model);
    EXPECT_OK(tinyllm_model_load_from_memory(bytes, size, &verify, &model));
    tinyllm_model_free(model);
    free(corrupt);

    EXPECT_STATUS(tinyllm_model_load_from_memory(NULL, 100, NULL, &model), INVALID, "data is NULL");
    EXPECT_STATUS(tinyllm_model_load_from_memory(NULL, 0, NULL, &model),
                  TINYLLM_STATUS_INVALID_MODEL, NULL);
    EXPECT_STATUS(tinyllm_model_load_from_memory(text, sizeof text, NULL, &model),
                  TINYLLM_STATUS_INVALID_MODEL, "magic");
    EXPECT_STATUS(tinyllm_model_load_from_memory(bytes, size, NULL, NULL), INVALID,
                  "model is NULL");
    free(bytes);
}

// A model copied from memory at an odd address gives the same logits as the mapped file.
static void check_load_from_memory(const char *model_path, const tinyllm_model *mapped) {
    size_t size = 0;
    unsigned char *bytes = read_file(model_path, &size);
    EXPECT(bytes != NULL);
    if (bytes == NULL) {
        return;
    }
    unsigned char *odd = malloc(size + 1);
    memcpy(odd + 1, bytes, size);
    free(bytes);
    tinyllm_model *copied = NULL;
    EXPECT_OK(tinyllm_model_load_from_memory(odd + 1, size, NULL, &copied));
    memset(odd, 0, size + 1);  // the model owns a copy, so the caller's bytes may change
    free(odd);
    if (copied == NULL) {
        return;
    }
    EXPECT(tinyllm_model_file_size(copied) == size);
    EXPECT(tinyllm_model_n_params(copied) == tinyllm_model_n_params(mapped));

    const tinyllm_token prompt[] = {1, 2, 3, 4, 5};
    tinyllm_context *a = NULL, *b = NULL;
    EXPECT_OK(tinyllm_context_create(mapped, NULL, &a));
    EXPECT_OK(tinyllm_context_create(copied, NULL, &b));
    EXPECT_OK(tinyllm_context_eval(a, prompt, 5));
    EXPECT_OK(tinyllm_context_eval(b, prompt, 5));
    const float *logits_a = NULL, *logits_b = NULL;
    size_t n_a = 0, n_b = 0;
    EXPECT_OK(tinyllm_context_logits(a, &logits_a, &n_a));
    EXPECT_OK(tinyllm_context_logits(b, &logits_b, &n_b));
    EXPECT(n_a == (size_t)tinyllm_model_n_vocab(mapped) && n_a == n_b);
    EXPECT(logits_a != NULL && logits_b != NULL && memcmp(logits_a, logits_b, n_a * sizeof(float)) == 0);
    tinyllm_context_free(a);
    tinyllm_context_free(b);
    tinyllm_model_free(copied);
}

static void check_model_getters(const tinyllm_model *model) {
    EXPECT(tinyllm_model_architecture(NULL) == NULL);
    EXPECT(strstr(tinyllm_last_error(), "model is NULL") != NULL);
    EXPECT(tinyllm_model_name(NULL) == NULL);
    EXPECT(tinyllm_model_n_params(NULL) == 0);
    EXPECT(tinyllm_model_file_size(NULL) == 0);
    EXPECT(tinyllm_model_n_vocab(NULL) == -1);
    EXPECT(tinyllm_model_max_context(NULL) == -1);
    EXPECT(tinyllm_model_n_layers(NULL) == -1);
    EXPECT(tinyllm_model_hidden_dim(NULL) == -1);
    EXPECT(tinyllm_model_bos_token(NULL) == -1);
    EXPECT(tinyllm_model_n_eos_tokens(NULL) == -1);
    EXPECT(tinyllm_model_eos_token(NULL, 0) == -1);
    EXPECT(!tinyllm_model_is_eos(NULL, 0));
    EXPECT(!tinyllm_model_has_chat_template(NULL));
    tinyllm_layer_dims dims;
    EXPECT_STATUS(tinyllm_model_layer_dims(NULL, 0, &dims), INVALID, "model is NULL");

    const char *architecture = tinyllm_model_architecture(model);
    EXPECT(architecture != NULL && (strcmp(architecture, "llama") == 0 ||
                                    strcmp(architecture, "qwen2") == 0 ||
                                    strcmp(architecture, "qwen3") == 0));
    EXPECT(tinyllm_model_name(model) != NULL);
    EXPECT(tinyllm_model_n_params(model) > 0);
    EXPECT(tinyllm_model_n_vocab(model) > 0);
    EXPECT(tinyllm_model_max_context(model) > 0);
    EXPECT(tinyllm_model_hidden_dim(model) > 0);
    EXPECT(tinyllm_model_has_chat_template(model));
    int32_t n_layers = tinyllm_model_n_layers(model);
    EXPECT(n_layers > 0);
    for (int32_t layer = 0; layer < n_layers; layer++) {
        EXPECT_OK(tinyllm_model_layer_dims(model, layer, &dims));
        EXPECT(dims.n_heads > 0 && dims.n_kv_heads > 0 && dims.n_heads % dims.n_kv_heads == 0);
        EXPECT(dims.head_dim > 0 && dims.head_dim % 2 == 0 && dims.ffn_dim > 0);
    }
    EXPECT_STATUS(tinyllm_model_layer_dims(model, -1, &dims), INVALID, "layer -1");
    EXPECT_STATUS(tinyllm_model_layer_dims(model, n_layers, &dims), INVALID, "does not exist");
    EXPECT_STATUS(tinyllm_model_layer_dims(model, 0, NULL), INVALID, "dims is NULL");

    int32_t n_eos = tinyllm_model_n_eos_tokens(model);
    EXPECT(n_eos > 0);
    for (int32_t i = 0; i < n_eos; i++) {
        tinyllm_token eos = tinyllm_model_eos_token(model, i);
        EXPECT(eos >= 0 && eos < tinyllm_model_n_vocab(model));
        EXPECT(tinyllm_model_is_eos(model, eos));
    }
    EXPECT(tinyllm_model_eos_token(model, -1) == -1);
    EXPECT(tinyllm_model_eos_token(model, n_eos) == -1);
    EXPECT(strstr(tinyllm_last_error(), "does not exist") != NULL);
    EXPECT(!tinyllm_model_is_eos(model, -1));
    tinyllm_token bos = tinyllm_model_bos_token(model);
    EXPECT(bos >= -1 && bos < tinyllm_model_n_vocab(model));

    // Freeing NULL handles does nothing.
    tinyllm_model_free(NULL);
    tinyllm_context_free(NULL);
    tinyllm_sampler_free(NULL);
}

static void check_tokenizer(const tinyllm_model *model) {
    const char *text = "Hello, world! Hello again.";
    size_t text_len = strlen(text);
    size_t count = 12345;
    EXPECT_STATUS(tinyllm_tokenize(NULL, text, text_len, false, NULL, 0, &count), INVALID,
                  "model is NULL");
    EXPECT_STATUS(tinyllm_tokenize(model, text, text_len, false, NULL, 0, NULL), INVALID,
                  "n_tokens is NULL");
    EXPECT_STATUS(tinyllm_tokenize(model, NULL, 5, false, NULL, 0, &count), INVALID,
                  "text is NULL");
    EXPECT_STATUS(tinyllm_tokenize(model, "\xff\xfe", 2, false, NULL, 0, &count), INVALID,
                  "not valid UTF-8");
    EXPECT_STATUS(tinyllm_tokenize(model, text, text_len, false, NULL, 8, &count), INVALID,
                  "tokens is NULL");
    EXPECT_OK(tinyllm_tokenize(model, NULL, 0, false, NULL, 0, &count));
    EXPECT(count == 0);

    // Size query, then a buffer one short, then the exact size.
    EXPECT_STATUS(tinyllm_tokenize(model, text, text_len, false, NULL, 0, &count),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, "call again with a capacity of at least");
    size_t needed = count;
    EXPECT(needed > 1 && needed < 64);
    tinyllm_token tokens[64];
    for (int i = 0; i < 64; i++) {
        tokens[i] = -7;
    }
    EXPECT_STATUS(tinyllm_tokenize(model, text, text_len, false, tokens, needed - 1, &count),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    EXPECT(count == needed);
    EXPECT(tokens[0] == -7);  // nothing written to a short buffer
    EXPECT_OK(tinyllm_tokenize(model, text, text_len, false, tokens, needed, &count));
    EXPECT(count == needed && tokens[0] >= 0 && tokens[needed] == -7);

    // Detokenize: the same protocol with room for the NUL.
    size_t length = 0;
    EXPECT_STATUS(tinyllm_detokenize(NULL, tokens, count, false, NULL, 0, &length), INVALID,
                  "model is NULL");
    EXPECT_STATUS(tinyllm_detokenize(model, tokens, count, false, NULL, 0, NULL), INVALID,
                  "text_len is NULL");
    EXPECT_STATUS(tinyllm_detokenize(model, NULL, 3, false, NULL, 0, &length), INVALID,
                  "tokens is NULL");
    const tinyllm_token negative[] = {5, -1};
    EXPECT_STATUS(tinyllm_detokenize(model, negative, 2, false, NULL, 0, &length),
                  TINYLLM_STATUS_INVALID_TOKEN, "tokens[1] is token id -1");
    const tinyllm_token too_large[] = {tinyllm_model_n_vocab(model)};
    EXPECT_STATUS(tinyllm_detokenize(model, too_large, 1, false, NULL, 0, &length),
                  TINYLLM_STATUS_INVALID_TOKEN, "outside the vocabulary");
    EXPECT_STATUS(tinyllm_detokenize(model, tokens, count, false, NULL, 0, &length),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, "terminating NUL");
    EXPECT(length == text_len);
    char buffer[128];
    memset(buffer, 'x', sizeof buffer);
    EXPECT_STATUS(tinyllm_detokenize(model, tokens, count, false, buffer, length, &length),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    EXPECT(buffer[0] == 'x');
    EXPECT_OK(tinyllm_detokenize(model, tokens, count, false, buffer, length + 1, &length));
    EXPECT(strcmp(buffer, text) == 0);
    EXPECT_OK(tinyllm_detokenize(model, NULL, 0, false, buffer, sizeof buffer, &length));
    EXPECT(length == 0 && buffer[0] == '\0');

    // One token's piece.
    EXPECT_STATUS(tinyllm_token_to_piece(NULL, tokens[0], buffer, sizeof buffer, &length),
                  INVALID, "model is NULL");
    EXPECT_STATUS(tinyllm_token_to_piece(model, -3, buffer, sizeof buffer, &length),
                  TINYLLM_STATUS_INVALID_TOKEN, "-3");
    EXPECT_STATUS(tinyllm_token_to_piece(model, tokens[0], buffer, sizeof buffer, NULL), INVALID,
                  "piece_len is NULL");
    EXPECT_STATUS(tinyllm_token_to_piece(model, tokens[0], NULL, 0, &length),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    EXPECT(length > 0);
    EXPECT_OK(tinyllm_token_to_piece(model, tokens[0], buffer, length + 1, &length));
    EXPECT(strlen(buffer) == length && strncmp(buffer, text, length) == 0);
}

static void check_chat_template(const tinyllm_model *model) {
    tinyllm_chat_message messages[2] = {
        {.role = "system", .content = "You are terse."},
        {.role = "user", .content = "Hi"},
    };
    size_t length = 0;
    char buffer[1024];
    EXPECT_STATUS(tinyllm_chat_apply_template(NULL, messages, 2, true, NULL, 0, &length), INVALID,
                  "model is NULL");
    EXPECT_STATUS(tinyllm_chat_apply_template(model, NULL, 2, true, NULL, 0, &length), INVALID,
                  "messages is NULL");
    EXPECT_STATUS(tinyllm_chat_apply_template(model, messages, 2, true, NULL, 0, NULL), INVALID,
                  "text_len is NULL");
    tinyllm_chat_message no_role[1] = {{.role = NULL, .content = "Hi"}};
    EXPECT_STATUS(tinyllm_chat_apply_template(model, no_role, 1, true, NULL, 0, &length), INVALID,
                  "messages[0].role is NULL");
    tinyllm_chat_message no_content[2] = {{.role = "user", .content = "Hi"},
                                          {.role = "assistant", .content = NULL}};
    EXPECT_STATUS(tinyllm_chat_apply_template(model, no_content, 2, true, NULL, 0, &length),
                  INVALID, "messages[1].content is NULL");
    tinyllm_chat_message bad_text[1] = {{.role = "user", .content = "caf\xe9"}};
    EXPECT_STATUS(tinyllm_chat_apply_template(model, bad_text, 1, true, NULL, 0, &length),
                  INVALID, "messages[0].content is not valid UTF-8");

    EXPECT_STATUS(tinyllm_chat_apply_template(model, messages, 2, true, NULL, 0, &length),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    size_t needed = length;
    EXPECT(needed > 0 && needed < sizeof buffer);
    memset(buffer, 'x', sizeof buffer);
    EXPECT_STATUS(tinyllm_chat_apply_template(model, messages, 2, true, buffer, needed, &length),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    EXPECT(buffer[0] == 'x' && length == needed);
    EXPECT_OK(tinyllm_chat_apply_template(model, messages, 2, true, buffer, needed + 1, &length));
    EXPECT(strlen(buffer) == needed && strstr(buffer, "You are terse.") != NULL &&
           strstr(buffer, "Hi") != NULL);

    // Without the generation prompt the text is shorter; no messages is valid input.
    size_t without = 0;
    EXPECT_OK(tinyllm_chat_apply_template(model, messages, 2, false, buffer, sizeof buffer, &without));
    EXPECT(without < needed);
    EXPECT_OK(tinyllm_chat_apply_template(model, NULL, 0, false, buffer, sizeof buffer, &length));
}

static void check_context(const tinyllm_model *model) {
    tinyllm_context *context = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_context_create(NULL, NULL, &context), INVALID, "model is NULL");
    EXPECT(context == NULL);
    EXPECT_STATUS(tinyllm_context_create(model, NULL, NULL), INVALID, "context is NULL");

    // n_ctx: the default, 0 for the model's maximum, and a value above it.
    int32_t max_context = tinyllm_model_max_context(model);
    EXPECT_OK(tinyllm_context_create(model, NULL, &context));
    EXPECT(tinyllm_context_n_ctx(context) == (max_context < 4096 ? max_context : 4096));
    tinyllm_context_free(context);
    tinyllm_context_params params = tinyllm_context_default_params();
    EXPECT(params.n_ctx == 4096);
    params.n_ctx = 0;
    EXPECT_OK(tinyllm_context_create(model, &params, &context));
    EXPECT(tinyllm_context_n_ctx(context) == max_context);
    tinyllm_context_free(context);
    params.n_ctx = UINT32_MAX;
    EXPECT_OK(tinyllm_context_create(model, &params, &context));
    EXPECT(tinyllm_context_n_ctx(context) == max_context);
    tinyllm_context_free(context);

    EXPECT(tinyllm_context_n_ctx(NULL) == -1);
    EXPECT(strstr(tinyllm_last_error(), "context is NULL") != NULL);
    EXPECT(tinyllm_context_position(NULL) == -1);
    EXPECT(tinyllm_context_kv_cache_bytes(NULL) == 0);

    params.n_ctx = 8;
    EXPECT_OK(tinyllm_context_create(model, &params, &context));
    EXPECT(tinyllm_context_n_ctx(context) == 8);
    EXPECT(tinyllm_context_position(context) == 0);

    const float *logits = NULL;
    size_t n_logits = 0;
    EXPECT_STATUS(tinyllm_context_logits(context, &logits, &n_logits),
                  TINYLLM_STATUS_INVALID_STATE, "evaluate at least one token");
    EXPECT_STATUS(tinyllm_context_logits(NULL, &logits, &n_logits), INVALID, "context is NULL");

    const tinyllm_token tokens[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    EXPECT_STATUS(tinyllm_context_eval(NULL, tokens, 3), INVALID, "context is NULL");
    EXPECT_STATUS(tinyllm_context_eval(context, NULL, 3), INVALID, "tokens is NULL");
    EXPECT_STATUS(tinyllm_context_eval(context, tokens, 0), INVALID, "tokens is empty");
    const tinyllm_token invalid[] = {1, tinyllm_model_n_vocab(model)};
    EXPECT_STATUS(tinyllm_context_eval(context, invalid, 2), TINYLLM_STATUS_INVALID_TOKEN,
                  "tokens[1]");
    EXPECT_STATUS(tinyllm_context_eval(context, tokens, 9), TINYLLM_STATUS_CONTEXT_FULL,
                  "do not fit in the context");
    EXPECT(tinyllm_context_position(context) == 0);

    EXPECT_OK(tinyllm_context_eval(context, tokens, 5));
    EXPECT(tinyllm_context_position(context) == 5);
    EXPECT(tinyllm_context_kv_cache_bytes(context) > 0);
    EXPECT_OK(tinyllm_context_logits(context, &logits, &n_logits));
    EXPECT(logits != NULL && n_logits == (size_t)tinyllm_model_n_vocab(model));
    EXPECT(isfinite(logits[0]) && isfinite(logits[n_logits - 1]));
    EXPECT_STATUS(tinyllm_context_logits(context, NULL, &n_logits), INVALID, "logits is NULL");
    EXPECT_STATUS(tinyllm_context_logits(context, &logits, NULL), INVALID, "n_logits is NULL");
    EXPECT_STATUS(tinyllm_context_eval(context, tokens, 4), TINYLLM_STATUS_CONTEXT_FULL, NULL);
    EXPECT(tinyllm_context_position(context) == 5);

    // The tokens in the cache, with the buffer protocol.
    tinyllm_token cached[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    size_t count = 0;
    EXPECT_STATUS(tinyllm_context_tokens(NULL, cached, 8, &count), INVALID, "context is NULL");
    EXPECT_STATUS(tinyllm_context_tokens(context, cached, 8, NULL), INVALID, "n_tokens is NULL");
    EXPECT_STATUS(tinyllm_context_tokens(context, cached, 4, &count),
                  TINYLLM_STATUS_BUFFER_TOO_SMALL, NULL);
    EXPECT(count == 5 && cached[0] == -7);
    EXPECT_OK(tinyllm_context_tokens(context, cached, 8, &count));
    EXPECT(count == 5 && memcmp(cached, tokens, 5 * sizeof(tinyllm_token)) == 0 && cached[5] == -7);

    // Truncate, reset.
    EXPECT_STATUS(tinyllm_context_truncate(NULL, 2), INVALID, "context is NULL");
    EXPECT_OK(tinyllm_context_truncate(context, 100));
    EXPECT(tinyllm_context_position(context) == 5);
    EXPECT_OK(tinyllm_context_truncate(context, 3));
    EXPECT(tinyllm_context_position(context) == 3);
    EXPECT_STATUS(tinyllm_context_logits(context, &logits, &n_logits),
                  TINYLLM_STATUS_INVALID_STATE, NULL);
    EXPECT_OK(tinyllm_context_eval(context, tokens + 3, 5));
    EXPECT(tinyllm_context_position(context) == 8);
    EXPECT_STATUS(tinyllm_context_reset(NULL), INVALID, "context is NULL");
    EXPECT_OK(tinyllm_context_reset(context));
    EXPECT(tinyllm_context_position(context) == 0);
    tinyllm_context_free(context);
}

static void check_sampler(const tinyllm_model *model) {
    tinyllm_sampler *sampler = NOT_NULL_MARK;
    EXPECT_STATUS(tinyllm_sampler_create(NULL, NULL), INVALID, "sampler is NULL");
    tinyllm_sampler_params defaults = tinyllm_sampler_default_params();
    EXPECT(defaults.temperature > 0.79f && defaults.temperature < 0.81f && defaults.top_k == 40);
    struct {
        tinyllm_sampler_params params;
        const char *field;
    } cases[6];
    for (int i = 0; i < 6; i++) {
        cases[i].params = defaults;
    }
    cases[0].params.temperature = NAN, cases[0].field = "temperature";
    cases[1].params.top_k = -1, cases[1].field = "top_k";
    cases[2].params.top_p = 1.5f, cases[2].field = "top_p";
    cases[3].params.min_p = -0.5f, cases[3].field = "min_p";
    cases[4].params.repeat_penalty = 0.0f, cases[4].field = "repeat_penalty";
    cases[5].params.repeat_last_n = -2, cases[5].field = "repeat_last_n";
    for (int i = 0; i < 6; i++) {
        sampler = NOT_NULL_MARK;
        EXPECT_STATUS(tinyllm_sampler_create(&cases[i].params, &sampler), INVALID, cases[i].field);
        EXPECT(sampler == NULL);
    }

    tinyllm_sampler_params params = defaults;
    params.temperature = 1.5f;
    params.top_k = 0;
    params.top_p = 1.0f;
    params.min_p = 0.0f;
    params.seed = 42;
    EXPECT_OK(tinyllm_sampler_create(&params, &sampler));
    tinyllm_context *context = NULL;
    EXPECT_OK(tinyllm_context_create(model, NULL, &context));
    tinyllm_token token = -5;
    EXPECT_STATUS(tinyllm_sampler_sample(sampler, context, &token), TINYLLM_STATUS_INVALID_STATE,
                  "no logits");
    const tinyllm_token prompt[] = {3, 1, 4, 1, 5};
    EXPECT_OK(tinyllm_context_eval(context, prompt, 5));
    EXPECT_STATUS(tinyllm_sampler_sample(NULL, context, &token), INVALID, "sampler is NULL");
    EXPECT_STATUS(tinyllm_sampler_sample(sampler, NULL, &token), INVALID, "context is NULL");
    EXPECT_STATUS(tinyllm_sampler_sample(sampler, context, NULL), INVALID, "token is NULL");

    // After a reset the sampler repeats its choices.
    tinyllm_token first[8], second[8];
    for (int i = 0; i < 8; i++) {
        EXPECT_OK(tinyllm_sampler_sample(sampler, context, &first[i]));
        EXPECT(first[i] >= 0 && first[i] < tinyllm_model_n_vocab(model));
    }
    EXPECT_STATUS(tinyllm_sampler_reset(NULL), INVALID, "sampler is NULL");
    EXPECT_OK(tinyllm_sampler_reset(sampler));
    for (int i = 0; i < 8; i++) {
        EXPECT_OK(tinyllm_sampler_sample(sampler, context, &second[i]));
    }
    EXPECT(memcmp(first, second, sizeof first) == 0);
    tinyllm_context_free(context);
    tinyllm_sampler_free(sampler);
}

// State shared with the generation callbacks.
struct generation {
    int stop_after;    // the token callback returns 1 at this token count (0: never)
    int abort_after;   // the abort callback returns true at this call count (0: never)
    int tokens_seen;
    int abort_calls;
    size_t text_bytes;
    tinyllm_token ids[64];
};

static int32_t on_token(tinyllm_token token, const char *piece, size_t piece_len, void *user_data) {
    struct generation *state = user_data;
    if (piece == NULL || strlen(piece) != piece_len) {
        failures++;
        fprintf(stderr, "misuse.c: the token callback got a piece whose length is wrong\n");
    }
    if (state->tokens_seen < 64) {
        state->ids[state->tokens_seen] = token;
    }
    state->tokens_seen++;
    state->text_bytes += piece_len;
    return state->stop_after != 0 && state->tokens_seen >= state->stop_after;
}

static bool should_abort(void *user_data) {
    struct generation *state = user_data;
    state->abort_calls++;
    return state->abort_after != 0 && state->abort_calls >= state->abort_after;
}

static void check_generate(const tinyllm_model *model) {
    tinyllm_sampler_params greedy = tinyllm_sampler_default_params();
    greedy.temperature = 0.0f;
    tinyllm_sampler *sampler = NULL;
    EXPECT_OK(tinyllm_sampler_create(&greedy, &sampler));
    tinyllm_context_params params = tinyllm_context_default_params();
    params.n_ctx = 64;
    tinyllm_context *context = NULL;
    EXPECT_OK(tinyllm_context_create(model, &params, &context));
    const tinyllm_token prompt[] = {10, 20, 30, 40};
    tinyllm_generate_result result = {.n_generated = 999, .stop_reason = TINYLLM_STOP_EOS};
    struct generation state = {0};

    EXPECT_STATUS(tinyllm_generate(NULL, sampler, prompt, 4, 8, on_token, NULL, &state, &result),
                  INVALID, "context is NULL");
    EXPECT_STATUS(tinyllm_generate(context, NULL, prompt, 4, 8, on_token, NULL, &state, &result),
                  INVALID, "sampler is NULL");
    EXPECT_STATUS(tinyllm_generate(context, sampler, NULL, 4, 8, on_token, NULL, &state, &result),
                  INVALID, "prompt is NULL");
    EXPECT_STATUS(tinyllm_generate(context, sampler, NULL, 0, 8, on_token, NULL, &state, &result),
                  TINYLLM_STATUS_INVALID_STATE, "no logits");
    const tinyllm_token bad[] = {10, -4};
    EXPECT_STATUS(tinyllm_generate(context, sampler, bad, 2, 8, on_token, NULL, &state, &result),
                  TINYLLM_STATUS_INVALID_TOKEN, "prompt[1] is token id -4");
    tinyllm_token long_prompt[65];
    for (int i = 0; i < 65; i++) {
        long_prompt[i] = 7;
    }
    EXPECT_STATUS(tinyllm_generate(context, sampler, long_prompt, 65, 8, on_token, NULL, &state,
                                   &result),
                  TINYLLM_STATUS_CONTEXT_FULL, NULL);
    EXPECT(tinyllm_context_position(context) == 0 && state.tokens_seen == 0);

    // max_tokens 0 evaluates the prompt and generates nothing.
    EXPECT_OK(tinyllm_generate(context, sampler, prompt, 4, 0, on_token, NULL, &state, &result));
    EXPECT(result.n_generated == 0 && result.stop_reason == TINYLLM_STOP_MAX_TOKENS);
    EXPECT(tinyllm_context_position(context) == 4 && state.tokens_seen == 0);

    // The token callback stops generation after 3 tokens.
    EXPECT_OK(tinyllm_context_reset(context));
    struct generation stopped = {.stop_after = 3};
    EXPECT_OK(tinyllm_generate(context, sampler, prompt, 4, 20, on_token, should_abort, &stopped,
                               &result));
    EXPECT(result.stop_reason == TINYLLM_STOP_CALLBACK || result.stop_reason == TINYLLM_STOP_EOS);
    if (result.stop_reason == TINYLLM_STOP_CALLBACK) {
        EXPECT(result.n_generated == 3 && stopped.tokens_seen == 3);
        // The last token is not evaluated: the prompt and the first two generated tokens are.
        EXPECT(tinyllm_context_position(context) == 6);
    }

    // The same greedy run without a stop continues past 3 tokens with the same first tokens.
    EXPECT_OK(tinyllm_context_reset(context));
    struct generation full = {0};
    EXPECT_OK(tinyllm_generate(context, sampler, prompt, 4, 10, on_token, NULL, &full, &result));
    EXPECT(result.n_generated == (size_t)full.tokens_seen);
    EXPECT(memcmp(full.ids, stopped.ids, 3 * sizeof(tinyllm_token)) == 0 || full.tokens_seen < 3);

    // Generation continues from the logits in the context when the prompt is empty.
    if (full.tokens_seen > 0) {
        size_t before = (size_t)tinyllm_context_position(context);
        EXPECT_OK(tinyllm_context_eval(context, &full.ids[full.tokens_seen - 1], 1));
        struct generation more = {0};
        EXPECT_OK(tinyllm_generate(context, sampler, NULL, 0, 2, on_token, NULL, &more, NULL));
        EXPECT(more.tokens_seen >= 1 && (size_t)tinyllm_context_position(context) >= before + 1);
    }

    // The abort callback: at once (nothing evaluated), then after two evaluations.
    EXPECT_OK(tinyllm_context_reset(context));
    struct generation aborted = {.abort_after = 1};
    EXPECT_STATUS(tinyllm_generate(context, sampler, prompt, 4, 20, on_token, should_abort,
                                   &aborted, &result),
                  TINYLLM_STATUS_ABORTED, "aborted by the abort callback");
    EXPECT(result.stop_reason == TINYLLM_STOP_ABORTED && result.n_generated == 0);
    EXPECT(tinyllm_context_position(context) == 0);
    struct generation late = {.abort_after = 3};
    tinyllm_status status = tinyllm_generate(context, sampler, prompt, 4, 20, on_token,
                                             should_abort, &late, &result);
    if (status == TINYLLM_STATUS_ABORTED) {
        // Calls: before the prompt, after token 1, after token 2 (aborted there).
        EXPECT(result.stop_reason == TINYLLM_STOP_ABORTED && result.n_generated == 2);
        EXPECT(tinyllm_context_position(context) == 5);
    } else {
        EXPECT_OK(status);
        EXPECT(result.stop_reason == TINYLLM_STOP_EOS);
    }

    // A context that fills up stops generation with its own reason.
    tinyllm_context *small = NULL;
    params.n_ctx = 6;
    EXPECT_OK(tinyllm_context_create(model, &params, &small));
    struct generation filled = {0};
    EXPECT_OK(tinyllm_generate(small, sampler, prompt, 4, 20, on_token, NULL, &filled, &result));
    EXPECT(result.stop_reason == TINYLLM_STOP_CONTEXT_FULL || result.stop_reason == TINYLLM_STOP_EOS);
    if (result.stop_reason == TINYLLM_STOP_CONTEXT_FULL) {
        EXPECT(result.n_generated == 3 && tinyllm_context_position(small) == 6);
    }
    tinyllm_context_free(small);
    tinyllm_context_free(context);
    tinyllm_sampler_free(sampler);
}

// A context keeps its model alive: after the model handle is freed it still evaluates and
// generates text, with the same tokens as before.
static void check_context_outlives_model(const char *model_path) {
    tinyllm_model *model = NULL;
    EXPECT_OK(tinyllm_model_load(model_path, NULL, &model));
    if (model == NULL) {
        return;
    }
    tinyllm_context *context = NULL;
    tinyllm_sampler_params greedy = tinyllm_sampler_default_params();
    greedy.temperature = 0.0f;
    tinyllm_sampler *sampler = NULL;
    EXPECT_OK(tinyllm_sampler_create(&greedy, &sampler));
    EXPECT_OK(tinyllm_context_create(model, NULL, &context));
    const tinyllm_token prompt[] = {11, 12, 13};
    struct generation before = {0};
    tinyllm_generate_result result;
    EXPECT_OK(tinyllm_generate(context, sampler, prompt, 3, 6, on_token, NULL, &before, &result));
    EXPECT_OK(tinyllm_context_reset(context));

    tinyllm_model_free(model);

    struct generation after = {0};
    EXPECT_OK(tinyllm_generate(context, sampler, prompt, 3, 6, on_token, NULL, &after, &result));
    EXPECT(after.tokens_seen == before.tokens_seen);
    EXPECT(memcmp(after.ids, before.ids, (size_t)before.tokens_seen * sizeof(tinyllm_token)) == 0);
    EXPECT(after.text_bytes == before.text_bytes);
    tinyllm_context_free(context);
    tinyllm_sampler_free(sampler);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: misuse MODEL SCRATCH_DIR\n");
        return 2;
    }
    const char *model_path = argv[1];
    check_version();
    check_bad_files(model_path, argv[2]);

    tinyllm_model *model = NULL;
    EXPECT_OK(tinyllm_model_load(model_path, NULL, &model));
    if (model == NULL) {
        fprintf(stderr, "misuse: cannot load %s: %s\n", model_path, tinyllm_last_error());
        return 1;
    }
    check_load_from_memory(model_path, model);
    check_model_getters(model);
    check_tokenizer(model);
    check_chat_template(model);
    check_context(model);
    check_sampler(model);
    check_generate(model);
    tinyllm_model_free(model);
    check_context_outlives_model(model_path);

    printf("misuse: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
