// tinyllm.hpp: a header-only C++17 wrapper of the tinyllm C API (tinyllm.h).
//
// Each handle is owned by a move-only class that frees it in its destructor, and every failing
// call throws tinyllm::Error with the status and the library's message. Threading rules are
// those of the C API: a Model may be shared by many threads, and each Context and Sampler is
// used by one thread at a time. A Context keeps its model alive, so a Model may be destroyed
// before the contexts created from it.
#ifndef TINYLLM_HPP
#define TINYLLM_HPP

#include <tinyllm.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tinyllm {

// A failed tinyllm call: status() is the tinyllm_status, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(tinyllm_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}

    tinyllm_status status() const noexcept { return status_; }

private:
    tinyllm_status status_;
};

// The library's version, "MAJOR.MINOR.PATCH".
inline std::string version() { return tinyllm_version(); }

// TINYLLM_ABI_VERSION of the library that is loaded.
inline uint32_t abi_version() { return tinyllm_abi_version(); }

namespace detail {

inline void check(tinyllm_status status) {
    if (status != TINYLLM_STATUS_OK) {
        throw Error(status, tinyllm_last_error());
    }
}

struct ModelDeleter {
    void operator()(tinyllm_model *model) const noexcept { tinyllm_model_free(model); }
};
struct ContextDeleter {
    void operator()(tinyllm_context *context) const noexcept { tinyllm_context_free(context); }
};
struct SamplerDeleter {
    void operator()(tinyllm_sampler *sampler) const noexcept { tinyllm_sampler_free(sampler); }
};

// Runs the buffer protocol for an array: queries the count, then fills a vector of that size.
// `fill(buffer, capacity, &count)` is one call of a C function that takes a caller buffer.
template <typename T, typename Fill>
std::vector<T> fill_vector(Fill fill) {
    size_t count = 0;
    tinyllm_status status = fill(nullptr, 0, &count);
    if (status == TINYLLM_STATUS_OK) {
        return {};
    }
    if (status != TINYLLM_STATUS_BUFFER_TOO_SMALL) {
        check(status);
    }
    std::vector<T> items(count);
    check(fill(items.data(), items.size(), &count));
    items.resize(count);
    return items;
}

// Runs the buffer protocol for text, whose buffer also needs a byte for the terminating NUL.
template <typename Fill>
std::string fill_string(Fill fill) {
    size_t length = 0;
    tinyllm_status status = fill(nullptr, 0, &length);
    if (status != TINYLLM_STATUS_BUFFER_TOO_SMALL) {
        check(status);
    }
    std::string text(length + 1, '\0');
    check(fill(text.data(), text.size(), &length));
    text.resize(length);
    return text;
}

}  // namespace detail

// One message of a conversation.
struct Message {
    std::string role;     // "system", "user" or "assistant"
    std::string content;  // the text of the message
};

// An open model. Thread-safe: const member functions may run on many threads at once.
class Model {
public:
    // Maps and checks the .tllm file at `path`.
    explicit Model(const std::string &path,
                   const tinyllm_model_params &params = tinyllm_model_default_params()) {
        tinyllm_model *raw = nullptr;
        detail::check(tinyllm_model_load(path.c_str(), &params, &raw));
        handle_.reset(raw);
    }

    // Copies `size` bytes of a .tllm file held in memory; `data` may be freed afterwards.
    static Model from_memory(const void *data, size_t size,
                             const tinyllm_model_params &params = tinyllm_model_default_params()) {
        tinyllm_model *raw = nullptr;
        detail::check(tinyllm_model_load_from_memory(data, size, &params, &raw));
        return Model(raw);
    }

    tinyllm_model *get() const noexcept { return handle_.get(); }

    std::string architecture() const { return tinyllm_model_architecture(get()); }
    std::string name() const { return tinyllm_model_name(get()); }
    uint64_t n_params() const { return tinyllm_model_n_params(get()); }
    int32_t n_vocab() const { return tinyllm_model_n_vocab(get()); }
    int32_t n_layers() const { return tinyllm_model_n_layers(get()); }
    int32_t hidden_dim() const { return tinyllm_model_hidden_dim(get()); }
    int32_t max_context() const { return tinyllm_model_max_context(get()); }
    tinyllm_token bos_token() const { return tinyllm_model_bos_token(get()); }
    bool is_eos(tinyllm_token token) const { return tinyllm_model_is_eos(get(), token); }
    bool has_chat_template() const { return tinyllm_model_has_chat_template(get()); }

    tinyllm_layer_dims layer_dims(int32_t layer) const {
        tinyllm_layer_dims dims{};
        detail::check(tinyllm_model_layer_dims(get(), layer, &dims));
        return dims;
    }

    // Token ids of `text`; `add_special` adds the tokenizer's special tokens (BOS for many
    // models). Pass false for text from apply_chat_template().
    std::vector<tinyllm_token> tokenize(std::string_view text, bool add_special) const {
        return detail::fill_vector<tinyllm_token>([&](tinyllm_token *buffer, size_t capacity, size_t *count) {
            return tinyllm_tokenize(get(), text.data(), text.size(), add_special, buffer, capacity, count);
        });
    }

    // Text of `tokens`; `skip_special` leaves out special tokens.
    std::string detokenize(const std::vector<tinyllm_token> &tokens, bool skip_special) const {
        return detail::fill_string([&](char *buffer, size_t capacity, size_t *length) {
            return tinyllm_detokenize(get(), tokens.data(), tokens.size(), skip_special, buffer,
                                      capacity, length);
        });
    }

    // Text of one token, special tokens included.
    std::string token_to_piece(tinyllm_token token) const {
        return detail::fill_string([&](char *buffer, size_t capacity, size_t *length) {
            return tinyllm_token_to_piece(get(), token, buffer, capacity, length);
        });
    }

    // `messages` rendered with the model's chat template.
    std::string apply_chat_template(const std::vector<Message> &messages,
                                    bool add_generation_prompt) const {
        std::vector<tinyllm_chat_message> raw;
        raw.reserve(messages.size());
        for (const Message &message : messages) {
            raw.push_back({message.role.c_str(), message.content.c_str()});
        }
        return detail::fill_string([&](char *buffer, size_t capacity, size_t *length) {
            return tinyllm_chat_apply_template(get(), raw.data(), raw.size(), add_generation_prompt,
                                               buffer, capacity, length);
        });
    }

private:
    explicit Model(tinyllm_model *raw) : handle_(raw) {}

    std::unique_ptr<tinyllm_model, detail::ModelDeleter> handle_;
};

class Context;

// A sampler: parameters and random state. Used by one thread at a time.
class Sampler {
public:
    explicit Sampler(const tinyllm_sampler_params &params = tinyllm_sampler_default_params()) {
        tinyllm_sampler *raw = nullptr;
        detail::check(tinyllm_sampler_create(&params, &raw));
        handle_.reset(raw);
    }

    // Parameters for greedy decoding: the most likely token every time.
    static tinyllm_sampler_params greedy_params() {
        tinyllm_sampler_params params = tinyllm_sampler_default_params();
        params.temperature = 0.0f;
        return params;
    }

    tinyllm_sampler *get() const noexcept { return handle_.get(); }

    // Restarts the random generator from the seed.
    void reset() { detail::check(tinyllm_sampler_reset(get())); }

    // The next token after the context's last evaluated token; not evaluated.
    inline tinyllm_token sample(const Context &context);

private:
    std::unique_ptr<tinyllm_sampler, detail::SamplerDeleter> handle_;
};

// The logits of the last evaluated token; valid until the context changes.
struct Logits {
    const float *data;
    size_t size;
};

// One conversation: KV cache and logits. Used by one thread at a time.
class Context {
public:
    // Called for each generated token with its text; return false to stop.
    using TokenCallback = std::function<bool(tinyllm_token token, std::string_view piece)>;
    // Called before each evaluation; return true to abort.
    using AbortCallback = std::function<bool()>;

    explicit Context(const Model &model,
                     const tinyllm_context_params &params = tinyllm_context_default_params()) {
        tinyllm_context *raw = nullptr;
        detail::check(tinyllm_context_create(model.get(), &params, &raw));
        handle_.reset(raw);
    }

    tinyllm_context *get() const noexcept { return handle_.get(); }

    int32_t n_ctx() const { return tinyllm_context_n_ctx(get()); }
    int32_t position() const { return tinyllm_context_position(get()); }
    uint64_t kv_cache_bytes() const { return tinyllm_context_kv_cache_bytes(get()); }

    // The tokens in the KV cache, oldest first.
    std::vector<tinyllm_token> tokens() const {
        return detail::fill_vector<tinyllm_token>([&](tinyllm_token *buffer, size_t capacity, size_t *count) {
            return tinyllm_context_tokens(get(), buffer, capacity, count);
        });
    }

    void reset() { detail::check(tinyllm_context_reset(get())); }
    void truncate(size_t n_keep) { detail::check(tinyllm_context_truncate(get(), n_keep)); }

    void eval(const tinyllm_token *tokens, size_t count) {
        detail::check(tinyllm_context_eval(get(), tokens, count));
    }
    void eval(const std::vector<tinyllm_token> &tokens) { eval(tokens.data(), tokens.size()); }

    Logits logits() const {
        Logits logits{nullptr, 0};
        detail::check(tinyllm_context_logits(get(), &logits.data, &logits.size));
        return logits;
    }

    // Evaluates `prompt`, then generates up to `max_tokens` tokens (see tinyllm_generate). An
    // exception thrown by a callback stops generation and is rethrown here. Returns the count and
    // the stop reason; an abort is a stop reason, not an exception.
    tinyllm_generate_result generate(Sampler &sampler, const tinyllm_token *prompt, size_t count,
                                     size_t max_tokens, const TokenCallback &on_token,
                                     const AbortCallback &should_abort = {}) {
        Callbacks callbacks{&on_token, &should_abort, nullptr};
        tinyllm_generate_result result{};
        tinyllm_status status = tinyllm_generate(
            get(), sampler.get(), prompt, count, max_tokens, on_token ? &token_trampoline : nullptr,
            should_abort ? &abort_trampoline : nullptr, &callbacks, &result);
        if (callbacks.exception) {
            std::rethrow_exception(callbacks.exception);
        }
        if (status != TINYLLM_STATUS_ABORTED) {
            detail::check(status);
        }
        return result;
    }

private:
    struct Callbacks {
        const TokenCallback *on_token;
        const AbortCallback *should_abort;
        std::exception_ptr exception;
    };

    // C callbacks must not let exceptions through tinyllm, so they are caught here and rethrown
    // by generate().
    static int32_t token_trampoline(tinyllm_token token, const char *piece, size_t piece_len,
                                    void *user_data) {
        auto *callbacks = static_cast<Callbacks *>(user_data);
        try {
            return (*callbacks->on_token)(token, std::string_view(piece, piece_len)) ? 0 : 1;
        } catch (...) {
            callbacks->exception = std::current_exception();
            return 1;
        }
    }

    static bool abort_trampoline(void *user_data) {
        auto *callbacks = static_cast<Callbacks *>(user_data);
        try {
            return (*callbacks->should_abort)();
        } catch (...) {
            callbacks->exception = std::current_exception();
            return true;
        }
    }

    std::unique_ptr<tinyllm_context, detail::ContextDeleter> handle_;
};

inline tinyllm_token Sampler::sample(const Context &context) {
    tinyllm_token token = -1;
    detail::check(tinyllm_sampler_sample(get(), context.get(), &token));
    return token;
}

}  // namespace tinyllm

#endif  // TINYLLM_HPP
