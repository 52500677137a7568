// patient: HIS → front, realtime. Patients (emrPatientInfo); master data joins in the full data set.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { emrPatientInfo } from '../../schemas/index.js';

export default receiveFunction({ resources: [emrPatientInfo] });
