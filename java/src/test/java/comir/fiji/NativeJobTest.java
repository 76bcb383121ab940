package comir.fiji;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

/**
 * The status line of long native jobs comes from the library (its wording, percentage and
 * time left are tested there: progress::remaining_words); here, that the call is wired.
 */
public class NativeJobTest {
	@Test
	public void aJobWithNothingDoneYetSaysNoTimeLeft() {
		long job = Native.newJob();
		try {
			assertEquals("...", Native.jobStatus(job));
		}
		finally {
			Native.endJob(job);
		}
		assertEquals("an ended job is unknown", "...", Native.jobStatus(job));
	}
}
