// Hadoop's own HDFS (and optionally YARN) mini cluster on loopback, for tests and benchmarks.
//
//   java -cp CLASSPATH MiniCluster DIR NN_PORT NN_HTTP_PORT [RM_PORT SCHED_PORT TRACKER_PORT
//        ADMIN_PORT RM_WEB_PORT NM_PORT NM_LOCALIZER_PORT NM_WEB_PORT]
//
// Everything lives in DIR: the DFS blocks (DIR/dfs), YARN's folders (DIR/yarn), and a small
// client configuration in DIR/conf (core-site, hdfs-site, yarn-site) to use as HADOOP_CONF_DIR.
// The mini cluster's own Configuration is not handed to clients: it names test-only classes
// (a static topology mapping) that spark-submit cannot load. DIR/ready is written when every
// service is up; SIGTERM stops the services.
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

public final class MiniCluster {
  private MiniCluster() {}

  private static String site(String[][] props) {
    StringBuilder sb = new StringBuilder("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (String[] p : props) {
      sb.append("  <property><name>").append(p[0]).append("</name><value>")
        .append(p[1]).append("</value></property>\n");
    }
    return sb.append("</configuration>\n").toString();
  }

  private static void write(File f, String text) throws IOException {
    File tmp = new File(f.getPath() + ".tmp");
    Files.write(tmp.toPath(), text.getBytes(StandardCharsets.UTF_8));
    Files.move(tmp.toPath(), f.toPath(), StandardCopyOption.ATOMIC_MOVE);
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3 && args.length != 11) {
      System.err.println("usage: MiniCluster DIR NN_PORT NN_HTTP_PORT [8 YARN ports]");
      System.exit(2);
    }
    File dir = new File(args[0]).getAbsoluteFile();
    int nnPort = Integer.parseInt(args[1]);
    int nnHttp = Integer.parseInt(args[2]);
    boolean yarn = args.length == 11;
    File conf = new File(dir, "conf");
    conf.mkdirs();

    Configuration c = new Configuration();
    c.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(dir, "dfs").getPath());
    c.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    c.set("dfs.namenode.http-address", "127.0.0.1:" + nnHttp);
    c.set("dfs.datanode.address", "127.0.0.1:0");
    c.set("dfs.datanode.http.address", "127.0.0.1:0");
    c.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    c.set("dfs.webhdfs.enabled", "true");
    c.set("dfs.permissions.enabled", "true");
    c.set("dfs.namenode.acls.enabled", "true");
    c.setInt("dfs.replication", 1);
    c.setInt("dfs.blocksize", 8 * 1024 * 1024);  // small blocks: multi-block files in tests
    c.setInt("dfs.namenode.fs-limits.min-block-size", 1024 * 1024);
    c.set("hadoop.proxyuser." + System.getProperty("user.name") + ".hosts", "*");
    c.set("hadoop.proxyuser." + System.getProperty("user.name") + ".groups", "*");
    final MiniDFSCluster dfs = new MiniDFSCluster.Builder(c)
        .nameNodePort(nnPort).nameNodeHttpPort(nnHttp).numDataNodes(1)
        .format(true).manageNameDfsDirs(true).build();
    dfs.waitActive();
    String fsUri = "hdfs://127.0.0.1:" + nnPort;

    MiniYARNCluster yarnCluster = null;
    String[][] yarnSite = new String[0][];
    if (yarn) {
      String rm = "127.0.0.1:" + args[3];
      YarnConfiguration y = new YarnConfiguration(c);
      y.set("fs.defaultFS", fsUri);
      y.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, true);
      y.setBoolean(YarnConfiguration.YARN_MINICLUSTER_USE_RPC, true);
      y.set(YarnConfiguration.RM_ADDRESS, rm);
      y.set(YarnConfiguration.RM_SCHEDULER_ADDRESS, "127.0.0.1:" + args[4]);
      y.set(YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS, "127.0.0.1:" + args[5]);
      y.set(YarnConfiguration.RM_ADMIN_ADDRESS, "127.0.0.1:" + args[6]);
      y.set(YarnConfiguration.RM_WEBAPP_ADDRESS, "127.0.0.1:" + args[7]);
      y.set(YarnConfiguration.NM_ADDRESS, "127.0.0.1:" + args[8]);
      y.set(YarnConfiguration.NM_LOCALIZER_ADDRESS, "127.0.0.1:" + args[9]);
      y.set(YarnConfiguration.NM_WEBAPP_ADDRESS, "127.0.0.1:" + args[10]);
      y.setInt(YarnConfiguration.NM_PMEM_MB, 6144);
      y.setInt(YarnConfiguration.NM_VCORES, 4);
      y.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
      y.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
      y.setFloat(
          YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 99.0f);
      y.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
      y.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, 6144);
      y.set("yarn.scheduler.capacity.root.queues", "default");
      y.set("yarn.scheduler.capacity.root.default.capacity", "100");
      y.set("yarn.scheduler.capacity.root.default.maximum-capacity", "100");
      y.set("yarn.scheduler.capacity.maximum-am-resource-percent", "1.0");
      y.set("yarn.scheduler.capacity.root.default.maximum-am-resource-percent", "1.0");
      y.set(YarnConfiguration.NM_LOCAL_DIRS, new File(dir, "yarn/local").getPath());
      y.set(YarnConfiguration.NM_LOG_DIRS, new File(dir, "yarn/logs").getPath());
      y.setLong(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 600);
      y.setBoolean(YarnConfiguration.TIMELINE_SERVICE_ENABLED, false);
      y.set("yarn.log.dir", new File(dir, "yarn/logs").getPath());
      yarnCluster = new MiniYARNCluster("lakeshift", 1, 1, 1);
      yarnCluster.init(y);
      yarnCluster.start();
      yarnSite = new String[][] {
        {"yarn.resourcemanager.address", rm},
        {"yarn.resourcemanager.scheduler.address", "127.0.0.1:" + args[4]},
        {"yarn.resourcemanager.resource-tracker.address", "127.0.0.1:" + args[5]},
        {"yarn.resourcemanager.admin.address", "127.0.0.1:" + args[6]},
        {"yarn.resourcemanager.webapp.address", "127.0.0.1:" + args[7]},
        {"yarn.resourcemanager.hostname", "127.0.0.1"},
      };
    }
    final MiniYARNCluster yarnFinal = yarnCluster;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      if (yarnFinal != null) {
        yarnFinal.stop();
      }
      dfs.shutdown();
    }));

    write(new File(conf, "core-site.xml"), site(new String[][] {{"fs.defaultFS", fsUri}}));
    write(new File(conf, "hdfs-site.xml"), site(new String[][] {
      {"dfs.replication", "1"},
      {"dfs.client.use.datanode.hostname", "false"},
    }));
    write(new File(conf, "yarn-site.xml"), site(yarnSite));
    String ready = "{\"fs\": \"" + fsUri + "\", \"webhdfs\": \"http://127.0.0.1:" + nnHttp
        + "\", \"conf_dir\": \"" + conf.getPath() + "\", \"yarn\": "
        + (yarn ? "\"127.0.0.1:" + args[3] + "\", \"yarn_web\": \"http://127.0.0.1:" + args[7]
            + "\"" : "null")
        + "}\n";
    write(new File(dir, "ready"), ready);
    System.out.println("mini cluster ready: " + ready.trim());
    System.out.flush();
    Thread.currentThread().join();
  }
}
