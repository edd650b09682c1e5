//! `kubectl-netshim`: a kubectl plugin (`kubectl netshim ...`) that captures
//! the traffic of pods, one or many across nodes, from non-root debug
//! containers under netshim, and merges it live into one pcapng.

mod args;
mod capture;
mod cluster;
mod debug;
mod doctor;
mod merging;
mod show;

const HELP: &str = "\
kubectl netshim: capture pods' traffic, non-root, into one pcapng

Usage:
  kubectl netshim capture POD [FILTER…] | POD… -- [FILTER…] | -l SELECTOR [FILTER…]
        [-n NS | -A] [-c CONTAINER | --container NAME] [-w FILE|-] [-c COUNT]
        [-a duration:SECS|packets:N|filesize:KB|files:N] [-C MB] [-G SECS] [-W N]
        [-s SNAPLEN] [-B KiB] [-p] [-Q DIR] [-i IFACE]
        [--image REGISTRY/netshim:TAG] [--skip-unreachable] [--lifetime SECS]
        [--reorder-window MS] [--handler NAME] [-q]
  kubectl netshim doctor [POD… | -l SELECTOR] [-n NS | -A]
  kubectl's --kubeconfig FILE and --context NAME work with both.

capture: for each pod, an ephemeral debug container of netshim's image
(a random UID that none of the pod's containers has, no privilege
escalation, every default capability dropped but NET_RAW, seccomp
RuntimeDefault) that sleeps --lifetime seconds (3600);
once it runs, `netshim capture -i any -w -` in it through the API server;
every pod's stream merged in time order into one pcapng (interfaces named
NS/POD/IFACE; node, pod UID, container and image in their description).
Packets are held for the reorder window (--reorder-window: 200 ms to
stdout, 1 s to a file) for ordering.
-c COUNT is across pods; -c NAME (not a number) is the target container.
-C, -G and -W rotate the merged file as tcpdump does (FILE, FILE1… with
-C; FILE through strftime(3) with -G; a ring of N with -C -W N; N files
then stop with -G -W N); -a files:N stops after N files, as dumpcap.
-a duration: ends every pod's capture after SECS; packets: is -c;
filesize: ends the capture once the merged output holds KB kB.
A pod that goes away mid-capture ends its interfaces; the others go on.
The filter is compiled (libpcap) before any pod is touched. Pods that
cannot be captured are refused before anything is created, with the
reason, or skipped with --skip-unreachable. Ctrl-C, a closed pipe, -c and
-a end every capture in the cluster, each with its statistics.

doctor: RuntimeClasses, nodes where netshim is the default handler (the
label netshim.io/default-runtime=true), which pods can be captured, and
what RBAC you lack (patch pods/ephemeralcontainers, create pods/exec).
";

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBECTL_NETSHIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() || words.iter().any(|w| w == "-h" || w == "--help") {
        print!("{HELP}");
        std::process::exit(if words.is_empty() { 2 } else { 0 });
    }
    if words[0] == "--version" || words[0] == "version" {
        println!("kubectl-netshim {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let sub = words.remove(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    let r = rt.block_on(async move {
        match sub.as_str() {
            "capture" => capture::run(args::capture(words)?).await,
            "doctor" => doctor::run(args::doctor(words)?).await,
            other => anyhow::bail!("unknown command {other:?}: use capture or doctor (--help)"),
        }
    });
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("kubectl netshim: {}", show::text(&format!("{e:#}")));
            std::process::exit(1);
        }
    }
}
