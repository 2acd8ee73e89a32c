// chat.cpp: a multi-turn conversation on standard input through the C++ wrapper tinyllm.hpp.
//
// Usage: chat [options] MODEL
//
// Each line of standard input is one user message. The model's reply is streamed to standard
// output and ends with a newline. "/reset" starts the conversation over; end of input quits.
// Each turn renders the whole conversation with the chat template and evaluates only the part
// that differs from what the context already holds.
//
// Options:
//   -n N               maximum number of tokens per reply (default 256)
//   --temperature T    sampling temperature; 0 selects greedy decoding (default 0)
//   --context N        context length in tokens (default 4096)
//   --system TEXT      system message that opens the conversation
//   --ids              print each reply's token ids to standard error
//
// Exit status: 0 on success, 1 when a tinyllm call fails, 2 for invalid arguments.

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <tinyllm.hpp>

namespace {

struct Options {
    std::string model_path;
    size_t max_tokens = 256;
    float temperature = 0.0f;
    uint32_t context = 4096;
    std::string system;
    bool show_ids = false;
};

bool parse(int argc, char **argv, Options &options) {
    std::vector<std::string> positional;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        bool has_value = i + 1 < argc;
        if (arg == "-n" && has_value) {
            options.max_tokens = std::strtoul(argv[++i], nullptr, 10);
        } else if (arg == "--temperature" && has_value) {
            options.temperature = std::strtof(argv[++i], nullptr);
        } else if (arg == "--context" && has_value) {
            options.context = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (arg == "--system" && has_value) {
            options.system = argv[++i];
        } else if (arg == "--ids") {
            options.show_ids = true;
        } else if (!arg.empty() && arg[0] != '-') {
            positional.push_back(arg);
        } else {
            std::cerr << "error: unknown or incomplete option " << arg << "\n";
            return false;
        }
    }
    if (positional.size() != 1) {
        return false;
    }
    options.model_path = positional[0];
    return true;
}

// The number of leading tokens two sequences share.
size_t shared_prefix(const std::vector<tinyllm_token> &a, const std::vector<tinyllm_token> &b) {
    auto mismatch = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    return static_cast<size_t>(mismatch.first - a.begin());
}

int run(const Options &options) {
    tinyllm::Model model(options.model_path);
    if (!model.has_chat_template()) {
        std::cerr << "error: " << options.model_path << " has no chat template\n";
        return 1;
    }
    tinyllm_context_params context_params = tinyllm_context_default_params();
    context_params.n_ctx = options.context;
    tinyllm::Context context(model, context_params);
    tinyllm_sampler_params sampler_params = tinyllm_sampler_default_params();
    sampler_params.temperature = options.temperature;
    tinyllm::Sampler sampler(sampler_params);

    std::vector<tinyllm::Message> opening;
    if (!options.system.empty()) {
        opening.push_back({"system", options.system});
    }
    std::vector<tinyllm::Message> messages = opening;

    std::string line;
    while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.empty()) {
            continue;
        }
        if (line == "/reset") {
            messages = opening;
            context.reset();
            continue;
        }
        messages.push_back({"user", line});
        std::vector<tinyllm_token> tokens = model.tokenize(model.apply_chat_template(messages, true), false);
        size_t n_ctx = static_cast<size_t>(context.n_ctx());
        if (tokens.size() > n_ctx) {
            std::cerr << "the conversation no longer fits in the context of " << n_ctx
                      << " tokens; starting over\n";
            messages = opening;
            context.reset();
            continue;
        }
        // Keep the cached prefix this rendering shares with the last one, but evaluate at least
        // one token so that there are fresh logits to sample from.
        size_t keep = std::min(shared_prefix(context.tokens(), tokens), tokens.size() - 1);
        context.truncate(keep);

        std::vector<tinyllm_token> reply;
        size_t budget = std::min(options.max_tokens, n_ctx - tokens.size());
        context.generate(sampler, tokens.data() + keep, tokens.size() - keep, budget,
                         [&](tinyllm_token token, std::string_view piece) {
                             std::cout << piece << std::flush;
                             reply.push_back(token);
                             return true;
                         });
        std::cout << "\n" << std::flush;
        if (options.show_ids) {
            std::cerr << "ids:";
            for (tinyllm_token token : reply) {
                std::cerr << " " << token;
            }
            std::cerr << "\n";
        }
        messages.push_back({"assistant", model.detokenize(reply, true)});
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options options;
    if (!parse(argc, argv, options)) {
        std::cerr << "usage: chat [-n N] [--temperature T] [--context N] [--system TEXT] [--ids] MODEL\n";
        return 2;
    }
    try {
        return run(options);
    } catch (const tinyllm::Error &error) {
        std::cerr << "error: " << error.what() << " (" << tinyllm_status_string(error.status())
                  << ")\n";
        return 1;
    }
}
