// callgate: the command line, and the only place that wires concrete pieces together.
//   callgate serve [--listen ADDR:PORT] [--data-dir DIR | --redis-cluster SEEDS] [--threads N]
//   [--demo]
//                  [--tls-cert FILE --tls-key FILE] ...   (SIGHUP reloads the certificate)
//   callgate admin [--data-dir DIR | --redis-cluster SEEDS]
//   account|subaccount|channel|key|list|notify ... callgate --version
// Every serve/admin flag can also come from a CALLGATE_* environment variable.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <string>
#include <thread>

#include "admin/admin.h"
#include "app/service.h"
#include "log/log.h"

namespace callgate {
namespace {

int Serve(ServiceConfig config) {
  if (config.api.meta_app_secrets.empty()) {
    LogNotice(LogLevel::kWarn,
              "no --meta-app-secret: every webhook delivery will be refused (401)");
  }
  // Signals are taken by one thread with sigwait; block them before any thread starts. SIGHUP
  // is taken with or without TLS: a reload signal never stops the service.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string address = config.server.address;
  const int threads = config.server.threads;
  const std::size_t max_connections = config.server.max_connections;
  const std::string tls_cert_file = config.server.tls_cert_file;
  const std::string metrics_address = config.metrics_server ? config.metrics_server->address : "";
  auto service = Service::Start(std::move(config), SystemNow);
  if (!service) {
    LogNotice(LogLevel::kError, service.error());
    return 1;
  }
  const std::string base = (tls_cert_file.empty() ? "http://" : "https://") + address + ":" +
                           std::to_string((*service)->port());
  std::cout << "callgate listening on " << base << "\n";
  if (const unsigned short metrics_port = (*service)->metrics_port()) {
    std::cout << "callgate metrics on http://" << metrics_address << ":" << metrics_port
              << "/metrics\n";
  }
  if (const auto& key = (*service)->demo_key()) {
    std::cout << "demo: curl -sS -H 'Authorization: Bearer " << *key << "' '" << base
              << "/api/v1/whatsapp/subaccounts/" << kDemoSubaccount << "/channels/" << kDemoChannel
              << "/callPermissions?destination=%2B6500000000'\n";
  }
  std::cout.flush();
  if (const std::string reason = (*service)->stores().read_only_reason(); !reason.empty()) {
    LogNotice(LogLevel::kWarn, reason +
                                   ": serving reads only, every write fails (500) until it can be "
                                   "written (checked once a second)");
  }
  LogNotice(LogLevel::kInfo, "serving the " + (*service)->stores().description() + " with " +
                                 std::to_string(threads) + " thread(s), up to " +
                                 std::to_string(max_connections) + " connections");
  if (!tls_cert_file.empty()) {
    LogNotice(LogLevel::kInfo, "TLS certificate from " + tls_cert_file + ": " +
                                   (*service)->tls_certificate().description);
  }

  std::thread signal_waiter([&] {
    for (;;) {
      int received = 0;
      sigwait(&signals, &received);
      if (received != SIGHUP) {
        LogNotice(LogLevel::kInfo,
                  "signal " + std::to_string(received) + ", finishing in-flight requests");
        (*service)->Stop();
        return;
      }
      // New connections get the files' certificate; open ones keep theirs. One line either way.
      if (tls_cert_file.empty()) {
        LogNotice(LogLevel::kInfo, "SIGHUP: no --tls-cert to reload, nothing to do");
      } else if (const auto reloaded = (*service)->ReloadTls()) {
        LogNotice(LogLevel::kInfo, "SIGHUP: reloaded the TLS certificate from " + tls_cert_file +
                                       ": " + reloaded->description);
      } else {
        LogNotice(LogLevel::kError,
                  "SIGHUP: " + reloaded.error() + "; still serving the previous certificate");
      }
    }
  });
  (*service)->Run();
  // Run() also returns if the server stopped on its own: wake the waiter so it can be joined.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  service->reset();  // commits queued writes before exit
  LogNotice(LogLevel::kInfo, "stopped");
  return 0;
}

// The flags that choose a store, and its settings beyond --data-dir: serve's and admin's.
void AddStoreFlags(CLI::App& command, StoreConfig& store) {
  command
      .add_option("--redis-cluster", store.redis_cluster,
                  "Keep all state in this Redis Cluster: seed nodes, HOST:PORT[,HOST:PORT...] "
                  "(default: none, the embedded store in --data-dir)")
      ->envname("CALLGATE_REDIS_CLUSTER");
  command
      .add_option("--redis-key-prefix", store.redis_key_prefix,
                  "With --redis-cluster: every key starts with this, so deployments can share a "
                  "cluster")
      ->envname("CALLGATE_REDIS_KEY_PREFIX")
      ->capture_default_str();
}

// `callgate serve`: its flags, bound to a ServiceConfig whose defaults they show. Durations and
// sizes in the config's own units are converted after parsing.
struct ServeCli {
  ServiceConfig config;
  std::string listen = config.server.address + ":" + std::to_string(config.server.port);
  int idle_timeout = static_cast<int>(config.server.idle_timeout.count());
  int call_hold = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(config.api.call_hold).count());
  int notify_lease = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(config.notify.lease).count());
  std::size_t cache_mb = config.store.cache_bytes >> 20;
  std::string metrics_listen;  // empty: no metrics listener
  std::string log_format = "text";
  std::string access_log = config.access_log ? "on" : "off";
  CLI::App* command = nullptr;
};

void AddServe(CLI::App& app, ServeCli& cli) {
  CLI::App* serve = cli.command = app.add_subcommand("serve", "Run the HTTP service");
  serve->add_option("--data-dir", cli.config.store.data_dir, "Directory of the embedded store")
      ->envname("CALLGATE_DATA_DIR")
      ->capture_default_str();
  AddStoreFlags(*serve, cli.config.store);
  serve->add_option("--listen", cli.listen, "Address to listen on, HOST:PORT (port 0: any)")
      ->envname("CALLGATE_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--threads", cli.config.server.threads, "Server threads (default: one per core)")
      ->envname("CALLGATE_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve
      ->add_flag("--demo", cli.config.demo,
                 "Create the demo tenant and print a curl line (default: off)")
      ->envname("CALLGATE_DEMO")
      ->capture_default_str();
  serve
      ->add_option("--rate-limit", cli.config.api.rate_limit_per_second,
                   "Requests per second per account before 429 (0: unlimited)")
      ->envname("CALLGATE_RATE_LIMIT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_option("--max-body", cli.config.server.body_limit, "Largest request body in bytes")
      ->envname("CALLGATE_MAX_BODY")
      ->check(CLI::Range(1024, 64 * 1024 * 1024))
      ->capture_default_str();
  serve
      ->add_option("--max-connections", cli.config.server.max_connections,
                   "Connections open at once; more are closed as soon as they arrive (default: the "
                   "open-file limit, raised to its hard limit at start, less a reserve)")
      ->envname("CALLGATE_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  serve
      ->add_option("--idle-timeout", cli.idle_timeout,
                   "Seconds an idle keep-alive connection stays open")
      ->envname("CALLGATE_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option(
          "--tls-cert", cli.config.server.tls_cert_file,
          "Serve HTTPS with this certificate: a PEM file, the certificate then any "
          "intermediates; needs --tls-key; SIGHUP reloads both (default: none, plain HTTP)")
      ->envname("CALLGATE_TLS_CERT");
  serve
      ->add_option("--tls-key", cli.config.server.tls_key_file,
                   "The certificate's private key: an unencrypted PEM file (default: none)")
      ->envname("CALLGATE_TLS_KEY");

  serve
      ->add_option("--meta-app-secret", cli.config.api.meta_app_secrets,
                   "Meta app secret that signs webhooks; repeat (or comma-separate) to rotate "
                   "(default: none, and every delivery is refused)")
      ->envname("CALLGATE_META_APP_SECRET")
      ->delimiter(',');
  serve
      ->add_option("--meta-verify-token", cli.config.api.meta_verify_token,
                   "Token Meta echoes in the webhook subscription handshake (default: none, and "
                   "the handshake is refused)")
      ->envname("CALLGATE_META_VERIFY_TOKEN");
  serve
      ->add_option("--call-hold", cli.call_hold,
                   "Seconds a call authorisation holds a start_call slot without a webhook")
      ->envname("CALLGATE_CALL_HOLD")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve
      ->add_option("--notify-lease", cli.notify_lease,
                   "Seconds a notification being sent is held before any process may send it "
                   "again (after a crash, say); longer than a POST's 10 s timeout")
      ->envname("CALLGATE_NOTIFY_LEASE")
      ->check(CLI::Range(11, 3600))
      ->capture_default_str();
  serve
      ->add_option("--cache-mb", cli.cache_mb,
                   "MiB of pair states cached for status reads (0: every read goes to the file)")
      ->envname("CALLGATE_CACHE_MB")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  serve
      ->add_option("--metrics-listen", cli.metrics_listen,
                   "Also serve GET /metrics (and nothing else) on HOST:PORT (default: none; "
                   "/metrics is served on --listen either way)")
      ->envname("CALLGATE_METRICS_LISTEN");
  serve
      ->add_option("--log-format", cli.log_format,
                   "Lines on standard error: text (for people) or json (one object a line)")
      ->envname("CALLGATE_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve
      ->add_option("--access-log", cli.access_log,
                   "One line per answered request on standard error: on or off")
      ->envname("CALLGATE_ACCESS_LOG")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
}

// The config the flags describe; false (after saying why) if they do not describe one.
bool Finish(ServeCli& cli) {
  // The log is the process's: configured before its first line.
  ConfigureLog(ParseLogFormat(cli.log_format).value_or(LogFormat::kText));
  cli.config.access_log = cli.access_log == "on";
  if (!ParseListen(cli.listen, cli.config.server)) {
    LogNotice(LogLevel::kError, "--listen wants HOST:PORT, got '" + cli.listen + "'");
    return false;
  }
  const ServerOptions& server = cli.config.server;
  if (server.tls_cert_file.empty() != server.tls_key_file.empty()) {
    std::cerr << (server.tls_key_file.empty()
                      ? "error: --tls-cert needs --tls-key (CALLGATE_TLS_KEY): the file of the "
                        "certificate's private key\n"
                      : "error: --tls-key needs --tls-cert (CALLGATE_TLS_CERT): the file of the "
                        "certificate to serve\n");
    return false;
  }
  cli.config.server.idle_timeout = std::chrono::seconds(cli.idle_timeout);
  cli.config.api.call_hold = std::chrono::seconds(cli.call_hold);
  cli.config.notify.lease = std::chrono::seconds(cli.notify_lease);
  cli.config.store.cache_bytes = cli.cache_mb << 20;
  if (!cli.metrics_listen.empty()) {
    // One thread and a few connections: Prometheus scrapes over one connection at a time.
    ServerOptions metrics{.threads = 1, .max_connections = 64};
    if (!ParseListen(cli.metrics_listen, metrics)) {
      std::cerr << "error: --metrics-listen wants HOST:PORT, got '" << cli.metrics_listen << "'\n";
      return false;
    }
    cli.config.metrics_server = std::move(metrics);
  }
  return true;
}

// `callgate admin`: its subcommands and their arguments.
struct AdminCli {
  StoreConfig store;
  std::string id, account, subaccount, phone_number_id, callback = "disabled",
                                                        limits = "production";
  CLI::App *account_create, *account_list, *sub_create, *sub_list, *ch_create, *ch_callback,
      *ch_list, *key_create, *key_list, *key_revoke, *list_cmd, *notify_set, *notify_show,
      *notify_rotate, *notify_clear;
  std::string url;
};

void AddAdmin(CLI::App& app, AdminCli& cli) {
  CLI::App* admin = app.add_subcommand("admin", "Manage tenants in the embedded store");
  admin->add_option("--data-dir", cli.store.data_dir, "Directory of the embedded store")
      ->envname("CALLGATE_DATA_DIR")
      ->capture_default_str();
  AddStoreFlags(*admin, cli.store);
  admin->require_subcommand(1);

  CLI::App* account_cmd = admin->add_subcommand("account", "Accounts")->require_subcommand(1);
  cli.account_create = account_cmd->add_subcommand("create", "Create an account");
  cli.account_create->add_option("ID", cli.id)->required();
  cli.account_list = account_cmd->add_subcommand("list", "List accounts");

  CLI::App* sub_cmd = admin->add_subcommand("subaccount", "Subaccounts")->require_subcommand(1);
  cli.sub_create = sub_cmd->add_subcommand("create", "Create a subaccount");
  cli.sub_create->add_option("ID", cli.id)->required();
  cli.sub_create->add_option("--account", cli.account, "Owning account")->required();
  cli.sub_list = sub_cmd->add_subcommand("list", "List subaccounts");

  CLI::App* ch_cmd = admin->add_subcommand("channel", "Channels")->require_subcommand(1);
  cli.ch_create = ch_cmd->add_subcommand("create", "Create a channel");
  cli.ch_create->add_option("ID", cli.id)->required();
  cli.ch_create->add_option("--subaccount", cli.subaccount, "Owning subaccount")->required();
  cli.ch_create->add_option("--phone-number-id", cli.phone_number_id, "Upstream phone_number_id")
      ->required();
  cli.ch_create->add_option("--callback-permission", cli.callback)
      ->check(CLI::IsMember({"enabled", "disabled"}))
      ->capture_default_str();
  cli.ch_create->add_option("--limits", cli.limits)
      ->check(CLI::IsMember({"production", "sandbox"}))
      ->capture_default_str();
  cli.ch_callback =
      ch_cmd->add_subcommand("set-callback-permission", "Enable or disable callback permission");
  cli.ch_callback->add_option("ID", cli.id)->required();
  cli.ch_callback->add_option("STATE", cli.callback)
      ->required()
      ->check(CLI::IsMember({"enabled", "disabled"}));
  cli.ch_list = ch_cmd->add_subcommand("list", "List channels");

  CLI::App* key_cmd = admin->add_subcommand("key", "API keys")->require_subcommand(1);
  cli.key_create = key_cmd->add_subcommand("create", "Create a key; prints it once");
  cli.key_create->add_option("--account", cli.account, "Owning account")->required();
  cli.key_list = key_cmd->add_subcommand("list", "List keys: id first, never the secret");
  cli.key_list->add_option("--account", cli.account, "Owning account")->required();
  cli.key_revoke = key_cmd->add_subcommand("revoke", "Revoke a key");
  cli.key_revoke->add_option("KEY_ID", cli.id)->required();

  cli.list_cmd = admin->add_subcommand("list", "List accounts, subaccounts and channels");

  CLI::App* notify_cmd =
      admin->add_subcommand("notify", "Signed notifications of an account")->require_subcommand(1);
  cli.notify_set =
      notify_cmd->add_subcommand("set",
                                 "Send the account's notifications to a URL; prints the "
                                 "signing secret once");
  cli.notify_set->add_option("--account", cli.account, "The account")->required();
  cli.notify_set->add_option("--url", cli.url, "http:// or https:// URL to POST to")->required();
  cli.notify_show = notify_cmd->add_subcommand("show", "The URL and status, never the secret");
  cli.notify_show->add_option("--account", cli.account, "The account")->required();
  cli.notify_rotate = notify_cmd->add_subcommand(
      "rotate-secret", "Prints a new signing secret; the old one also signs for 24 h");
  cli.notify_rotate->add_option("--account", cli.account, "The account")->required();
  cli.notify_clear = notify_cmd->add_subcommand("clear", "Stop the account's notifications");
  cli.notify_clear->add_option("--account", cli.account, "The account")->required();
}

int RunAdmin(const AdminCli& cli) {
  StoreConfig config = cli.store;
  config.serving = false;
  auto stores = Stores::Open(config);
  if (!stores) {
    std::cerr << "error: " << stores.error() << "\n";
    return 1;
  }
  const bool writes =
      cli.account_create->parsed() || cli.sub_create->parsed() || cli.ch_create->parsed() ||
      cli.ch_callback->parsed() || cli.key_create->parsed() || cli.key_revoke->parsed() ||
      cli.notify_set->parsed() || cli.notify_rotate->parsed() || cli.notify_clear->parsed();
  if (const std::string reason = (*stores)->read_only_reason(); writes && !reason.empty()) {
    std::cerr << "error: " << reason << ": the store is read-only, nothing was changed\n";
    return 1;
  }
  const AdminContext ctx{(*stores)->tenants(), SystemNow(), std::cout, std::cerr};
  if (cli.account_create->parsed()) return CreateAccount(ctx, cli.id);
  if (cli.account_list->parsed()) return List(ctx, "accounts");
  if (cli.sub_create->parsed()) return CreateSubaccount(ctx, cli.id, cli.account);
  if (cli.sub_list->parsed()) return List(ctx, "subaccounts");
  if (cli.ch_create->parsed()) {
    return CreateChannel(
        ctx,
        {cli.id, cli.subaccount, cli.phone_number_id, cli.callback == "enabled",
         cli.limits == "sandbox" ? LimitsProfile::kSandbox : LimitsProfile::kProduction, ctx.now});
  }
  if (cli.ch_callback->parsed()) {
    return SetChannelCallbackPermission(ctx, cli.id, cli.callback == "enabled");
  }
  if (cli.ch_list->parsed()) return List(ctx, "channels");
  if (cli.key_create->parsed()) return CreateKey(ctx, cli.account);
  if (cli.key_list->parsed()) return ListKeys(ctx, cli.account);
  if (cli.key_revoke->parsed()) return RevokeKey(ctx, cli.id);
  if (cli.list_cmd->parsed()) return List(ctx, "all");
  if (cli.notify_set->parsed()) return SetNotify(ctx, cli.account, cli.url);
  if (cli.notify_show->parsed()) return ShowNotify(ctx, cli.account);
  if (cli.notify_rotate->parsed()) return RotateNotifySecret(ctx, cli.account);
  if (cli.notify_clear->parsed()) return ClearNotify(ctx, cli.account);
  return 2;
}

}  // namespace
}  // namespace callgate

int main(int argc, char** argv) {
  using namespace callgate;
  CLI::App app{"callgate: WhatsApp call permissions, as the 8x8 API publishes them"};
  app.set_version_flag("--version", "callgate " CALLGATE_VERSION);
  app.require_subcommand(1);
  ServeCli serve;
  AdminCli admin;
  AddServe(app, serve);
  AddAdmin(app, admin);
  CLI11_PARSE(app, argc, argv);
  if (serve.command->parsed()) return Finish(serve) ? Serve(std::move(serve.config)) : 2;
  return RunAdmin(admin);
}
