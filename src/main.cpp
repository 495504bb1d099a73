// callgate: the command line, and the only place that wires concrete pieces together.
//   callgate serve [--listen ADDR:PORT] [--data-dir DIR] [--threads N] [--demo] ...
//   callgate admin [--data-dir DIR] account|subaccount|channel|key|list ...
// Every serve/admin flag can also come from a CALLGATE_* environment variable.
#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "admin/admin.h"
#include "api/api.h"
#include "store/sqlite/sqlite_store.h"
#include "tenants/directory.h"

namespace callgate {
namespace {

Instant SystemNow() {
  return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

std::unique_ptr<SqliteStore> OpenStore(
    const std::string& data_dir, std::size_t cache_bytes = SqliteStore::Options{}.cache_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create data directory " << data_dir << ": " << ec.message() << "\n";
    return nullptr;
  }
  // A commit's responses reach the server threads together (HttpServer::ResponseBatch).
  auto store = SqliteStore::Open({.path = data_dir + "/callgate.db",
                                  .cache_bytes = cache_bytes,
                                  .completion_scope = HttpServer::ResponseBatch::Run});
  if (!store) {
    std::cerr << "error: " << store.error() << "\n";
    return nullptr;
  }
  return std::move(*store);
}

bool ParseListen(const std::string& listen, ServerOptions& options) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    const int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) return false;
    options.address = host;
    options.port = static_cast<unsigned short>(port);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

struct ServeFlags {
  std::string listen = "127.0.0.1:8080";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool demo = false;
  double rate_limit = 0;
  std::size_t max_body = 1024 * 1024;
  int idle_timeout = 30;
  std::vector<std::string> meta_app_secrets;
  std::string meta_verify_token;
  int call_hold = 90;
  std::size_t cache_mb = SqliteStore::Options{}.cache_bytes >> 20;
};

int Serve(const std::string& data_dir, const ServeFlags& flags) {
  ServerOptions options;
  if (!ParseListen(flags.listen, options)) {
    std::cerr << "error: --listen wants HOST:PORT, got '" << flags.listen << "'\n";
    return 2;
  }
  options.threads = flags.threads;
  options.body_limit = flags.max_body;
  options.idle_timeout = std::chrono::seconds(flags.idle_timeout);

  // Signals are taken by one thread with sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto store = OpenStore(data_dir, flags.cache_mb << 20);
  if (!store) return 1;
  std::optional<std::string> demo_key;
  if (flags.demo) {
    demo_key = EnsureDemoTenant({*store, SystemNow(), std::cout, std::cerr});
    if (!demo_key) return 1;
  }
  TenantDirectory tenants(*store, std::chrono::milliseconds(250));
  if (!tenants.Start()) {
    std::cerr << "error: cannot read tenants from " << data_dir << "\n";
    return 1;
  }
  if (flags.meta_app_secrets.empty()) {
    std::cerr << "callgate: no --meta-app-secret: every webhook delivery will be refused (401)\n";
  }
  Api api(*store, tenants, SystemNow,
          {.rate_limit_per_second = flags.rate_limit,
           .meta_app_secrets = flags.meta_app_secrets,
           .meta_verify_token = flags.meta_verify_token,
           .call_hold = std::chrono::seconds(flags.call_hold)});
  HttpServer server(
      options, [&api](HttpRequest&& req, Respond respond) { api.Handle(std::move(req), respond); },
      [&api](boost::beast::http::status status) { return api.Reject(status); });
  auto port = server.Listen();
  if (!port) {
    std::cerr << "error: " << port.error() << "\n";
    return 1;
  }
  const std::string base = "http://" + options.address + ":" + std::to_string(*port);
  std::cout << "callgate listening on " << base << "\n";
  if (demo_key) {
    std::cout << "demo: curl -sS -H 'Authorization: Bearer " << *demo_key << "' '" << base
              << "/api/v1/whatsapp/subaccounts/" << kDemoSubaccount << "/channels/" << kDemoChannel
              << "/callPermissions?destination=%2B6500000000'\n";
  }
  std::cout.flush();
  std::cerr << "callgate: serving " << data_dir << " with " << options.threads << " thread(s)\n";

  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    std::cerr << "callgate: signal " << received << ", finishing in-flight requests\n";
    server.Stop();
  });
  server.Run();
  // Run() also returns if the server stopped on its own: wake the waiter so it can be joined.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  store.reset();  // drains queued writes before exit
  std::cerr << "callgate: stopped\n";
  return 0;
}

}  // namespace
}  // namespace callgate

int main(int argc, char** argv) {
  using namespace callgate;
  CLI::App app{"callgate: WhatsApp call permissions, as the 8x8 API publishes them"};
  app.require_subcommand(1);
  std::string data_dir = "./data";

  ServeFlags serve_flags;
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP service");
  serve->add_option("--data-dir", data_dir, "Directory of the embedded store")
      ->envname("CALLGATE_DATA_DIR")
      ->capture_default_str();
  serve->add_option("--listen", serve_flags.listen, "Address to listen on, HOST:PORT (port 0: any)")
      ->envname("CALLGATE_LISTEN")
      ->capture_default_str();
  serve->add_option("--threads", serve_flags.threads, "Server threads (default: one per core)")
      ->envname("CALLGATE_THREADS")
      ->check(CLI::Range(1, 256));
  serve->add_flag("--demo", serve_flags.demo, "Create the demo tenant and print a curl line")
      ->envname("CALLGATE_DEMO");
  serve
      ->add_option("--rate-limit", serve_flags.rate_limit,
                   "Requests per second per account before 429/1400 (0: unlimited)")
      ->envname("CALLGATE_RATE_LIMIT")
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--max-body", serve_flags.max_body, "Largest request body in bytes")
      ->envname("CALLGATE_MAX_BODY")
      ->check(CLI::Range(1024, 64 * 1024 * 1024))
      ->capture_default_str();
  serve
      ->add_option("--idle-timeout", serve_flags.idle_timeout,
                   "Seconds an idle keep-alive connection stays open")
      ->envname("CALLGATE_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();

  serve
      ->add_option("--meta-app-secret", serve_flags.meta_app_secrets,
                   "Meta app secret that signs webhooks; repeat (or comma-separate) to rotate")
      ->envname("CALLGATE_META_APP_SECRET")
      ->delimiter(',');
  serve
      ->add_option("--meta-verify-token", serve_flags.meta_verify_token,
                   "Token Meta echoes in the webhook subscription handshake")
      ->envname("CALLGATE_META_VERIFY_TOKEN");
  serve
      ->add_option("--call-hold", serve_flags.call_hold,
                   "Seconds a call authorisation holds a start_call slot without a webhook")
      ->envname("CALLGATE_CALL_HOLD")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option("--cache-mb", serve_flags.cache_mb,
                   "MiB of pair states cached for status reads (0: every read goes to the file)")
      ->envname("CALLGATE_CACHE_MB")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();

  CLI::App* admin = app.add_subcommand("admin", "Manage tenants in the embedded store");
  admin->add_option("--data-dir", data_dir, "Directory of the embedded store")
      ->envname("CALLGATE_DATA_DIR")
      ->capture_default_str();
  admin->require_subcommand(1);
  std::string id, account, subaccount, phone_number_id, callback = "disabled",
                                                        limits = "production";

  CLI::App* account_cmd = admin->add_subcommand("account", "Accounts")->require_subcommand(1);
  CLI::App* account_create = account_cmd->add_subcommand("create", "Create an account");
  account_create->add_option("ID", id)->required();
  CLI::App* account_list = account_cmd->add_subcommand("list", "List accounts");

  CLI::App* sub_cmd = admin->add_subcommand("subaccount", "Subaccounts")->require_subcommand(1);
  CLI::App* sub_create = sub_cmd->add_subcommand("create", "Create a subaccount");
  sub_create->add_option("ID", id)->required();
  sub_create->add_option("--account", account, "Owning account")->required();
  CLI::App* sub_list = sub_cmd->add_subcommand("list", "List subaccounts");

  CLI::App* ch_cmd = admin->add_subcommand("channel", "Channels")->require_subcommand(1);
  CLI::App* ch_create = ch_cmd->add_subcommand("create", "Create a channel");
  ch_create->add_option("ID", id)->required();
  ch_create->add_option("--subaccount", subaccount, "Owning subaccount")->required();
  ch_create->add_option("--phone-number-id", phone_number_id, "Upstream phone_number_id")
      ->required();
  ch_create->add_option("--callback-permission", callback)
      ->check(CLI::IsMember({"enabled", "disabled"}))
      ->capture_default_str();
  ch_create->add_option("--limits", limits)
      ->check(CLI::IsMember({"production", "sandbox"}))
      ->capture_default_str();
  CLI::App* ch_callback =
      ch_cmd->add_subcommand("set-callback-permission", "Enable or disable callback permission");
  ch_callback->add_option("ID", id)->required();
  ch_callback->add_option("STATE", callback)
      ->required()
      ->check(CLI::IsMember({"enabled", "disabled"}));
  CLI::App* ch_list = ch_cmd->add_subcommand("list", "List channels");

  CLI::App* key_cmd = admin->add_subcommand("key", "API keys")->require_subcommand(1);
  CLI::App* key_create = key_cmd->add_subcommand("create", "Create a key; prints it once");
  key_create->add_option("--account", account, "Owning account")->required();
  CLI::App* key_list = key_cmd->add_subcommand("list", "List keys: id first, never the secret");
  key_list->add_option("--account", account, "Owning account")->required();
  CLI::App* key_revoke = key_cmd->add_subcommand("revoke", "Revoke a key");
  key_revoke->add_option("KEY_ID", id)->required();

  CLI::App* list_cmd = admin->add_subcommand("list", "List accounts, subaccounts and channels");

  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) return Serve(data_dir, serve_flags);

  auto store = OpenStore(data_dir);
  if (!store) return 1;
  const AdminContext ctx{*store,
                         std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now()),
                         std::cout, std::cerr};
  if (account_create->parsed()) return CreateAccount(ctx, id);
  if (account_list->parsed()) return List(ctx, "accounts");
  if (sub_create->parsed()) return CreateSubaccount(ctx, id, account);
  if (sub_list->parsed()) return List(ctx, "subaccounts");
  if (ch_create->parsed()) {
    return CreateChannel(
        ctx, {id, subaccount, phone_number_id, callback == "enabled",
              limits == "sandbox" ? LimitsProfile::kSandbox : LimitsProfile::kProduction, ctx.now});
  }
  if (ch_callback->parsed()) return SetChannelCallbackPermission(ctx, id, callback == "enabled");
  if (ch_list->parsed()) return List(ctx, "channels");
  if (key_create->parsed()) return CreateKey(ctx, account);
  if (key_list->parsed()) return ListKeys(ctx, account);
  if (key_revoke->parsed()) return RevokeKey(ctx, id);
  if (list_cmd->parsed()) return List(ctx, "all");
  return 2;
}
