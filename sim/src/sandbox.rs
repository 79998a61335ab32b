//! One sandbox run: the fakes, the tenants file that matches them, the fleet pointed at
//! them, and the clean-up of everything the run created.

use std::path::PathBuf;
use std::time::Duration;

use fakes::calcom::FakeCalcom;
use fakes::whatsapp::{FakeConfig, FakeWhatsApp, Limits, StatusWebhooks};

use crate::conversation::Router;
use crate::fleet::{Fleet, FleetError, FleetSpec, Services, WorkerMode, clean_up, fresh_namespace};
use crate::world::World;

const WHATSAPP_TOKEN: &str = "sim-whatsapp-token";
const APP_SECRET: &str = "sim-app-secret";
const CALCOM_KEY: &str = "cal_sim_key";

/// What a run needs decided before it starts.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub services: Services,
    pub world: World,
    pub workers: usize,
    pub worker_mode: WorkerMode,
    pub partitions: u16,
    /// Status webhooks (sent, delivered, read) for every bot message, back through ingress.
    pub status_webhooks: bool,
    /// Statuses of one business number falling due within this window share one webhook
    /// POST, as Meta aggregates them; zero sends each alone.
    pub status_batch: std::time::Duration,
    /// Raise the fake Cal.com's request budget: for load runs.
    pub generous_calcom: bool,
    pub log_filter: String,
    pub prefetch: u16,
}

/// A running sandbox.
pub struct Sandbox {
    pub whatsapp: fakes::whatsapp::RunningFake,
    pub calcom: fakes::calcom::RunningFake,
    pub fleet: Fleet,
    pub router: Router,
    pub world: World,
    pub namespace: String,
    pub partitions: u16,
    pub workers: usize,
    services: Services,
    tenants_dir: PathBuf,
}

impl Sandbox {
    pub async fn start(options: SandboxOptions) -> Result<Sandbox, FleetError> {
        let namespace = fresh_namespace();
        let workers = options.workers.max(1);
        let statuses = if options.status_webhooks {
            StatusWebhooks {
                batch_window: options.status_batch,
                ..StatusWebhooks::default()
            }
        } else {
            StatusWebhooks {
                enabled: false,
                ..StatusWebhooks::default()
            }
        };
        let whatsapp = FakeWhatsApp::spawn(FakeConfig {
            access_token: WHATSAPP_TOKEN.to_owned(),
            app_secret: APP_SECRET.to_owned(),
            businesses: options.world.whatsapp_numbers(),
            // Each worker process paces itself to Meta's 80 per second per number on its
            // own, so the fake allows that much per worker rather than rejecting the excess.
            limits: Limits {
                throughput_per_second: 80 * workers as u32,
                ..Limits::default()
            },
            statuses,
            ..FakeConfig::default()
        })
        .await?;
        let calcom = FakeCalcom::start(
            options
                .world
                .calcom_config(CALCOM_KEY, options.generous_calcom),
        )
        .await?;

        let tenants_dir =
            std::env::temp_dir().join(format!("sim-{}", namespace.trim_end_matches('.')));
        std::fs::create_dir_all(&tenants_dir)?;
        let tenants_file = tenants_dir.join("tenants.toml");
        std::fs::write(&tenants_file, options.world.tenants_toml())?;

        let spec = FleetSpec {
            services: options.services.clone(),
            namespace: namespace.clone(),
            partitions: options.partitions,
            workers,
            worker_mode: options.worker_mode,
            tenants_file,
            app_secret: APP_SECRET.to_owned(),
            whatsapp_token: WHATSAPP_TOKEN.to_owned(),
            whatsapp_api_base: whatsapp.graph_base_url(),
            calcom_api_base: calcom.base_url(),
            calcom_api_key: CALCOM_KEY.to_owned(),
            log_filter: options.log_filter.clone(),
            prefetch: options.prefetch,
        };
        let fleet = match Fleet::start(&spec).await {
            Ok(fleet) => fleet,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&tenants_dir);
                return Err(error);
            }
        };
        whatsapp.set_webhook_url(&fleet.webhook_url());
        let router = Router::start(whatsapp.fake());
        let sandbox = Sandbox {
            whatsapp,
            calcom,
            fleet,
            router,
            world: options.world,
            namespace,
            partitions: options.partitions,
            workers,
            services: options.services,
            tenants_dir,
        };
        if let Err(error) = sandbox.fleet.wait_ready(Duration::from_secs(30)).await {
            sandbox.stop().await;
            return Err(error);
        }
        Ok(sandbox)
    }

    pub fn fake(&self) -> &FakeWhatsApp {
        self.whatsapp.fake()
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Stops the fleet and the fakes and removes every queue, key and file of the run.
    /// Returns what could not be cleaned, for a warning.
    pub async fn stop(self) -> Vec<String> {
        self.fleet.stop().await;
        let problems = clean_up(&self.services, &self.namespace, self.partitions).await;
        let _ = std::fs::remove_dir_all(&self.tenants_dir);
        let _ = self.whatsapp.shutdown().await;
        self.calcom.shutdown().await;
        problems
    }
}
