#include "args.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <utility>

#include "output.h"
#include "rocky/base/strings.h"

namespace rocky::cli {

using base::Quoted;

namespace {

constexpr std::string_view kHelpCommand = "help";

// Builds a string by appending each part. Messages are built with this rather than `"text" + std::string`,
// which GCC 12 at -O3 reports as overlapping memcpy (a false -Wrestrict, fatal with -Dwerror=true).
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string joined;
  (joined.append(std::string_view(parts)), ...);
  return joined;
}

// "table or json", "a, b or c".
std::string JoinChoices(const std::vector<std::string>& choices) {
  std::string joined;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) joined += (i + 1 == choices.size()) ? " or " : ", ";
    joined += choices[i];
  }
  return joined;
}

// What help shows after the flag name: "PATH", "table|json", or nothing for a switch.
std::string ValuePlaceholder(const FlagSpec& flag) {
  if (flag.choices.empty()) return flag.value_name;
  std::string joined;
  for (const std::string& choice : flag.choices) {
    if (!joined.empty()) joined += '|';
    joined += choice;
  }
  return joined;
}

bool TakesValue(const FlagSpec& flag) { return !flag.value_name.empty() || !flag.choices.empty(); }

// The flag named `name` among those in scope, innermost command first so a subcommand may shadow a parent.
const FlagSpec* FindFlag(const CommandChain& chain, std::string_view name) {
  for (auto command = chain.rbegin(); command != chain.rend(); ++command) {
    for (const FlagSpec& flag : (*command)->flags) {
      if (flag.name == name) return &flag;
    }
  }
  return nullptr;
}

const CommandSpec* FindSubcommand(const CommandSpec& command, std::string_view name) {
  for (const CommandSpec& sub : command.subcommands) {
    if (sub.name == name) return &sub;
  }
  return nullptr;
}

// True when words after `command` name a subcommand rather than being its positional arguments.
bool DispatchesToSubcommands(const CommandSpec& command) {
  return !command.subcommands.empty() || !command.handler;
}

UsageError Error(std::string message, const CommandChain& chain) {
  return UsageError{std::move(message), chain};
}

// `help [COMMAND...]`: walks the named commands from the root and asks for the last one's help.
ParseResult ParseHelpCommand(const CommandSpec& root, const std::vector<std::string_view>& names) {
  Invocation invocation;
  invocation.action = Invocation::Action::kHelp;
  invocation.chain = {&root};
  for (std::string_view name : names) {
    const CommandSpec* sub = FindSubcommand(invocation.command(), name);
    if (sub == nullptr) {
      if (name.starts_with("-")) {
        return Error(Cat("unexpected argument ", Quoted(name), " after help"), {&root});
      }
      return Error(Cat("unknown command ", Quoted(name)), invocation.chain);
    }
    invocation.chain.push_back(sub);
  }
  return invocation;
}

// "FILE" when required, "[FILE]" when optional.
std::string PositionalUsage(const PositionalSpec& positional) {
  return positional.required ? positional.name : Cat("[", positional.name, "]");
}

std::string UsageLine(const CommandChain& chain) {
  const CommandSpec& command = *chain.back();
  std::string line = Cat("Usage: ", ChainName(chain), " [OPTIONS]");
  if (DispatchesToSubcommands(command)) {
    // A command with a handler of its own runs it when no subcommand is given (`rocky state`).
    line += command.handler ? " [COMMAND]" : " COMMAND";
  } else {
    for (const PositionalSpec& positional : command.positionals) {
      line += Cat(" ", PositionalUsage(positional));
    }
  }
  return line;
}

void AddFlagRows(Table& table, const std::vector<FlagSpec>& flags) {
  for (const FlagSpec& flag : flags) {
    if (!flag.replaced_by.empty()) continue;  // removed: only its error names it
    std::string usage = Cat("--", flag.name);
    if (TakesValue(flag)) usage += Cat(" ", ValuePlaceholder(flag));
    table.AddRow({usage, flag.help});
  }
}

}  // namespace

std::string ChainName(const CommandChain& chain) {
  std::string name;
  for (const CommandSpec* command : chain) {
    if (!name.empty()) name += ' ';
    name += command->name;
  }
  return name;
}

std::optional<std::string_view> Invocation::Get(std::string_view flag) const {
  auto found = flags.find(flag);
  if (found == flags.end()) return std::nullopt;
  return found->second;
}

ParseResult ParseCommandLine(const CommandSpec& root, const std::vector<std::string_view>& args) {
  Invocation invocation;
  invocation.chain = {&root};
  bool only_positionals = false;

  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    const bool looks_like_flag = !only_positionals && arg.size() > 1 && arg.starts_with("-");

    if (!only_positionals && arg == "--") {
      only_positionals = true;
      continue;
    }
    if (looks_like_flag) {
      if (arg == "-h") arg = "--help";
      if (!arg.starts_with("--")) return Error(Cat("unknown flag ", Quoted(arg)), invocation.chain);
      std::string_view body = arg.substr(2);
      size_t equals = body.find('=');
      std::string_view name = body.substr(0, equals);
      if (name == "help" || name == "version") {
        if (equals != std::string_view::npos) {
          return Error(Cat("flag '--", name, "' takes no value"), invocation.chain);
        }
        // Both stop parsing, so `rocky dump --help --bad-flag` still shows dump's help.
        invocation.action = name == "help" ? Invocation::Action::kHelp : Invocation::Action::kVersion;
        return invocation;
      }
      const FlagSpec* flag = FindFlag(invocation.chain, name);
      if (flag == nullptr) {
        return Error(Cat("unknown flag '--", name, "' for ", Quoted(ChainName(invocation.chain))),
                     invocation.chain);
      }
      const std::string display = Cat("--", flag->name);
      if (!flag->replaced_by.empty()) {
        return Error(Cat("flag ", Quoted(display), " was removed; use ", flag->replaced_by),
                     invocation.chain);
      }
      if (!TakesValue(*flag)) {
        if (equals != std::string_view::npos) {
          return Error(Cat("flag ", Quoted(display), " takes no value"), invocation.chain);
        }
        invocation.flags[flag->name] = "";
        continue;
      }
      std::string_view value;
      if (equals != std::string_view::npos) {
        value = body.substr(equals + 1);
      } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
        value = args[++i];
      }
      if (value.empty()) {
        return Error(Cat("flag ", Quoted(display), " needs a value (", ValuePlaceholder(*flag), ")"),
                     invocation.chain);
      }
      if (!flag->choices.empty() &&
          std::find(flag->choices.begin(), flag->choices.end(), value) == flag->choices.end()) {
        return Error(Cat("invalid value ", Quoted(value), " for flag ", Quoted(display), " (expected ",
                         JoinChoices(flag->choices), ")"),
                     invocation.chain);
      }
      invocation.flags[flag->name] = std::string(value);
      continue;
    }

    // A word: a subcommand, the built-in help command, or a positional argument.
    const CommandSpec& command = invocation.command();
    if (DispatchesToSubcommands(command)) {
      if (const CommandSpec* sub = FindSubcommand(command, arg); sub != nullptr) {
        invocation.chain.push_back(sub);
        continue;
      }
      if (invocation.chain.size() == 1 && arg == kHelpCommand) {
        return ParseHelpCommand(root, {args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end()});
      }
      return Error(Cat("unknown command ", Quoted(arg)), invocation.chain);
    }
    if (invocation.positionals.size() >= command.positionals.size()) {
      return Error(Cat("unexpected argument ", Quoted(arg)), invocation.chain);
    }
    invocation.positionals.emplace_back(arg);
  }

  const CommandSpec& command = invocation.command();
  if (DispatchesToSubcommands(command) && !command.handler)
    return Error("no command given", invocation.chain);
  if (invocation.positionals.size() < command.positionals.size()) {
    const PositionalSpec& missing = command.positionals[invocation.positionals.size()];
    if (missing.required) return Error(Cat("missing argument ", missing.name), invocation.chain);
  }
  return invocation;
}

std::string FormatHelp(const CommandChain& chain) {
  assert(!chain.empty());
  const CommandSpec& command = *chain.back();
  const bool is_root = chain.size() == 1;

  std::string help = command.description.empty() ? command.summary : command.description;
  if (!help.empty() && !help.ends_with('\n')) help += '\n';
  if (!help.empty()) help += '\n';
  help += Cat(UsageLine(chain), "\n");

  if (DispatchesToSubcommands(command)) {
    Table commands;
    for (const CommandSpec& sub : command.subcommands) {
      std::string usage = sub.name;
      for (const PositionalSpec& positional : sub.positionals) {
        usage += Cat(" ", PositionalUsage(positional));
      }
      commands.AddRow({usage, sub.summary});
    }
    if (is_root) {
      commands.AddRow(
          {Cat(kHelpCommand, " [COMMAND]"), Cat("Show help for ", command.name, " or one of its commands")});
    }
    if (commands.rows() > 0) help += Cat("\nCommands:\n", commands.Render(2));
  } else if (!command.positionals.empty()) {
    Table arguments;
    for (const PositionalSpec& positional : command.positionals) {
      arguments.AddRow({positional.name, positional.help});
    }
    help += Cat("\nArguments:\n", arguments.Render(2));
  }

  Table options;
  AddFlagRows(options, command.flags);
  options.AddRow({"-h, --help", "Show this help"});
  if (is_root) options.AddRow({"--version", "Show the version"});
  help += Cat("\nOptions:\n", options.Render(2));

  if (!is_root) {
    Table globals;
    for (size_t i = 0; i + 1 < chain.size(); ++i) AddFlagRows(globals, chain[i]->flags);
    if (globals.rows() > 0) help += Cat("\nGlobal options:\n", globals.Render(2));
  }
  return help;
}

}  // namespace rocky::cli
