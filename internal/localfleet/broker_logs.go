package localfleet

import (
	"fmt"
	"time"
)

// The log lines brokers write when things go wrong, in Kafka's log4j
// layout: Map failed stack traces, log recovery progress, uncleanable
// partitions.

// mapFailedStack is the shape of Kafka's Map failed stack trace: an index
// resize (AbstractIndex.resize) that mmap refuses, below the operation that
// needed it.
func mapFailedStack(callers ...string) []string {
	out := []string{
		"java.io.IOException: Map failed",
		"\tat sun.nio.ch.FileChannelImpl.map(FileChannelImpl.java:1127)",
		"\tat kafka.log.AbstractIndex.$anonfun$resize$1(AbstractIndex.scala:189)",
		"\tat kafka.log.AbstractIndex.resize(AbstractIndex.scala:175)",
		"\tat kafka.log.AbstractIndex.$anonfun$trimToValidSize$1(AbstractIndex.scala:241)",
		"\tat kafka.log.AbstractIndex.trimToValidSize(AbstractIndex.scala:241)",
	}
	for _, c := range callers {
		out = append(out, "\tat "+c)
	}
	return append(out,
		"Caused by: java.lang.OutOfMemoryError: Map failed",
		"\tat sun.nio.ch.FileChannelImpl.map0(Native Method)",
		"\tat sun.nio.ch.FileChannelImpl.map(FileChannelImpl.java:1124)",
		"\t... 14 more",
	)
}

// mapFailedRunning is what a running broker logs when truncating a
// follower log needs one map too many; its only log dir goes offline and
// the broker halts.
func mapFailedRunning(now time.Time, id int32, partition string) []string {
	lines := []string{kafkaLine(now, "ERROR",
		fmt.Sprintf("[ReplicaFetcher replicaId=%d, leaderId=%d, fetcherId=0] Error while truncating partition %s", id, id%3+1, partition),
		"kafka.server.ReplicaFetcherThread")}
	lines = append(lines, mapFailedStack(
		"kafka.log.LogSegment.truncateTo(LogSegment.scala:440)",
		"kafka.log.LocalLog.$anonfun$truncateTo$2(LocalLog.scala:392)",
		"kafka.log.UnifiedLog.truncateTo(UnifiedLog.scala:1551)",
		"kafka.log.LogManager.truncateTo(LogManager.scala:611)",
		"kafka.server.ReplicaFetcherThread.truncate(ReplicaFetcherThread.scala:221)",
		"kafka.server.AbstractFetcherThread.truncateToEpochEndOffsets(AbstractFetcherThread.scala:297)",
	)...)
	return append(lines,
		kafkaLine(now, "ERROR", "Error while truncating logs in dir "+dataDir, "kafka.server.LogDirFailureChannel"),
		kafkaLine(now, "WARN", fmt.Sprintf("[ReplicaManager broker=%d] Stopping serving replicas in dir %s", id, dataDir), "kafka.server.ReplicaManager"),
		kafkaLine(now, "ERROR", "Shutdown broker because all log dirs in "+dataDir+" have failed", "kafka.log.LogManager"),
	)
}

// mapFailedAtStartup is what a broker logs when log loading at startup
// needs more maps than vm.max_map_count allows.
func mapFailedAtStartup(now time.Time, id int32) []string {
	lines := []string{
		kafkaLine(now, "INFO", "Loading logs from log dirs ArrayBuffer("+dataDir+")", "kafka.log.LogManager"),
		kafkaLine(now, "ERROR", "There was an error in one of the threads during logs loading: java.io.IOException: Map failed", "kafka.log.LogManager"),
		kafkaLine(now, "ERROR", fmt.Sprintf("[KafkaServer id=%d] Fatal error during KafkaServer startup. Prepare to shutdown", id), serverLogger),
	}
	lines = append(lines, mapFailedStack(
		"kafka.log.LogSegment.recover(LogSegment.scala:467)",
		"kafka.log.LogLoader.recoverSegment(LogLoader.scala:376)",
		"kafka.log.LogLoader.recoverLog(LogLoader.scala:437)",
		"kafka.log.LogLoader.load(LogLoader.scala:164)",
		"kafka.log.LogManager.loadLog(LogManager.scala:302)",
	)...)
	return append(lines, kafkaLine(now, "INFO", fmt.Sprintf("[KafkaServer id=%d] shutting down", id), serverLogger))
}

// recoveryLines are LogLoader's progress lines for segments (from, to],
// at most a few per tick, the last always included.
func recoveryLines(now time.Time, p recoveryProgress, from, to int) []string {
	const perTick = 4
	var out []string
	step := max(1, (to-from)/perTick)
	for s := from + step; s <= to; s += step {
		if to-s < step && s != to {
			continue
		}
		out = append(out, kafkaLine(now, "INFO", recoveryMessage(p, s), "kafka.log.LogLoader"))
	}
	if len(out) == 0 && to > from {
		out = append(out, kafkaLine(now, "INFO", recoveryMessage(p, to), "kafka.log.LogLoader"))
	}
	return out
}

func recoveryMessage(p recoveryProgress, seg int) string {
	log := "events-0"
	if n := len(p.logs); n > 0 {
		log = p.logs[min(n-1, (seg-1)*n/max(p.segments, 1))]
	}
	return fmt.Sprintf("[LogLoader partition=%s, dir=%s] Recovering segment %020d.log (%d/%d)",
		log, dataDir, int64(seg)*4096, seg, p.segments)
}

// uncleanableLines is what the cleaner logs when cleaning a partition of
// __consumer_offsets throws: the exception, and that it gives up on the
// partition (LogCleaner.CleanerThread.cleanFilthiestLog).
func uncleanableLines(now time.Time, partition int) []string {
	tp := fmt.Sprintf("%s-%d", offsetsTopic, partition)
	return []string{
		kafkaLine(now, "ERROR", fmt.Sprintf("[kafka-log-cleaner-thread-0]: Unexpected exception thrown when cleaning log "+
			"Log(dir=%s/%s, topic=%s, partition=%d). Marking its partition (%s) as uncleanable",
			dataDir, tp, offsetsTopic, partition, tp), cleanerLogger),
		"org.apache.kafka.common.errors.CorruptRecordException: Record size 0 is less than the minimum record overhead (14)",
		"\tat org.apache.kafka.common.record.ByteBufferLogInputStream.nextBatchSize(ByteBufferLogInputStream.java:73)",
		"\tat kafka.log.Cleaner.cleanInto(LogCleaner.scala:727)",
		"\tat kafka.log.Cleaner.cleanSegments(LogCleaner.scala:623)",
		"\tat kafka.log.Cleaner.doClean(LogCleaner.scala:551)",
		"\tat kafka.log.LogCleaner$CleanerThread.cleanFilthiestLog(LogCleaner.scala:373)",
	}
}
