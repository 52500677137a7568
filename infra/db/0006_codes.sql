-- Code mapping (值域代码映射; requirements §5, docs/code-mapping.md): the national value domains,
-- versioned; the hospitals' mappings onto them, with history; the local codes seen in real data; the
-- per-org policy; and a version counter per org that the in-process code caches poll.
-- openGauss 5.0-safe (shared/design/opengauss-sql.md): bigserial, MERGE in the data layer, no jsonb
-- builders, no LISTEN (caches poll code_map_version).

-- The registry of the forty domains: static facts from shared/codes/registry.ts, and what is loaded.
CREATE TABLE code_domain (
  domain varchar(40) PRIMARY KEY,         -- key in code, API and CSV files (sex, drug, diagnosis, ...)
  slot integer NOT NULL UNIQUE,           -- 0..39; 0..32 are the national numbers
  domain_no integer,                      -- number in value_domains.csv; NULL for the rest
  name_zh varchar(100) NOT NULL,
  name_en varchar(200) NOT NULL,
  fields varchar(300) NOT NULL,           -- data-set fields that carry it
  name_status varchar(10) NOT NULL,       -- numbered | named | candidate | unknown
  name_source varchar(300) NOT NULL,      -- where the name was found
  public_list boolean NOT NULL,           -- false: the list arrives by import (drugs, region/org, ICD-10)
  list_of varchar(40),                    -- uses another domain's national codes (address -> region)
  standard varchar(200),
  list_status varchar(10) NOT NULL DEFAULT 'none', -- none | loaded | partial | inferred
  list_source varchar(300),               -- file or import the current list came from
  list_version varchar(50),               -- current version of the list
  code_count integer NOT NULL DEFAULT 0,  -- codes in the current version
  loaded_at timestamptz,
  note varchar(300),
  CONSTRAINT code_domain_name_status CHECK (name_status IN ('numbered', 'named', 'candidate', 'unknown')),
  CONSTRAINT code_domain_list_status CHECK (list_status IN ('none', 'loaded', 'partial', 'inferred'))
);

-- National codes, versioned. The current list of a domain is its rows with valid_to IS NULL; a new
-- version closes the previous rows (valid_to) and adds its own, so history is never lost.
CREATE TABLE code_national (
  domain varchar(40) NOT NULL,
  code varchar(50) NOT NULL,
  version varchar(50) NOT NULL,
  name varchar(250) NOT NULL,
  name_en varchar(250),
  valid_from timestamptz NOT NULL DEFAULT now(),
  valid_to timestamptz,
  PRIMARY KEY (domain, code, version)
);
CREATE INDEX code_national_current ON code_national (domain, valid_to);

-- A hospital's mapping of one local code onto the national domain (one live row per org, domain and
-- local code). equivalence as in a FHIR ConceptMap: equal | equivalent | wider | narrower | unmatched
-- (unmatched: reviewed, the national list has no code for it; national_code is then NULL).
-- version counts the revisions of this mapping; map_version is the org's counter after the change.
CREATE TABLE code_mapping (
  map_id bigserial PRIMARY KEY,
  org_code varchar(50) NOT NULL,
  domain varchar(40) NOT NULL,
  local_code varchar(100) NOT NULL,
  local_name varchar(250),
  national_code varchar(50),
  equivalence varchar(12) NOT NULL,
  version integer NOT NULL,
  map_version bigint NOT NULL,
  made_by varchar(100) NOT NULL,           -- the person (or the caller when no person was named)
  made_via varchar(120),                   -- the caller: console address rule, API key, CLI
  made_at timestamptz NOT NULL,
  note varchar(500),
  CONSTRAINT code_mapping_equivalence CHECK (equivalence IN ('equal', 'equivalent', 'wider', 'narrower', 'unmatched')),
  CONSTRAINT code_mapping_target CHECK ((equivalence = 'unmatched') = (national_code IS NULL))
);
CREATE UNIQUE INDEX code_mapping_key ON code_mapping (org_code, domain, local_code);

-- Every change of a mapping (create, update, delete), never updated: who, when, from what to what.
CREATE TABLE code_mapping_history (
  hist_id bigserial PRIMARY KEY,
  map_id bigint NOT NULL,
  action varchar(10) NOT NULL,            -- create | update | delete
  org_code varchar(50) NOT NULL,
  domain varchar(40) NOT NULL,
  local_code varchar(100) NOT NULL,
  local_name varchar(250),
  national_code varchar(50),
  equivalence varchar(12) NOT NULL,
  version integer NOT NULL,
  map_version bigint NOT NULL,
  made_by varchar(100) NOT NULL,
  made_via varchar(120),
  made_at timestamptz NOT NULL,
  note varchar(500),
  CONSTRAINT code_mapping_history_action CHECK (action IN ('create', 'update', 'delete'))
);
CREATE INDEX code_mapping_history_key ON code_mapping_history (org_code, domain, local_code);
CREATE INDEX code_mapping_history_map ON code_mapping_history (map_id);

-- Local codes seen in real data, fed by ingest through the code cache (observe, buffered, MERGE).
-- records_held: records held because of this code (ingest adds and subtracts).
CREATE TABLE code_observed (
  org_code varchar(50) NOT NULL,
  domain varchar(40) NOT NULL,
  local_code varchar(100) NOT NULL,
  local_name varchar(250),                 -- a sample of the name sent with the code
  seen_count bigint NOT NULL,
  first_seen timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  records_held integer NOT NULL DEFAULT 0,
  PRIMARY KEY (org_code, domain, local_code)
);
CREATE INDEX code_observed_org ON code_observed (org_code, domain, last_seen);

-- How ingest reads a domain's codes for an org: national (validated) | local (mapped) | auto
-- (a valid national code is kept, anything else mapped). No row = auto.
CREATE TABLE code_policy (
  org_code varchar(50) NOT NULL,
  domain varchar(40) NOT NULL,
  policy varchar(10) NOT NULL,
  set_by varchar(100) NOT NULL,
  set_at timestamptz NOT NULL,
  PRIMARY KEY (org_code, domain),
  CONSTRAINT code_policy_value CHECK (policy IN ('national', 'local', 'auto'))
);

-- One row per org, bumped in the transaction of every mapping or policy change; the row '*' is
-- bumped by every national-list import. Caches poll this table (openGauss has no LISTEN).
CREATE TABLE code_map_version (
  org_code varchar(50) PRIMARY KEY,
  version bigint NOT NULL,
  changed_at timestamptz NOT NULL
);
INSERT INTO code_map_version (org_code, version, changed_at) VALUES ('*', 1, now());

-- BEGIN GENERATED by infra/codes/seed-sql.ts
-- The forty domains (shared/codes/registry.ts).
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('org', 0, 0, '组织机构编码', 'organisation code', 'orgCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('idType', 1, 1, '身份证件类别代码', 'ID document type', 'idCardTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'WS 364.3 CV02.01.101', 'loaded', 'schemas/codes/code_id_document_CV02.01.101.csv', 'WS 364.3-2011', 8, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('sex', 2, 2, '性别代码', 'sex', 'genderCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'GB/T 2261.1', 'loaded', 'schemas/codes/code_sex_GBT2261.1.csv', 'GB/T 2261.1-2003', 6, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('ethnicity', 3, 3, '民族代码', 'ethnicity', 'nationCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'GB/T 3304', 'loaded', 'schemas/codes/code_ethnicity_GBT3304.csv', 'GB/T 3304-1991', 58, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('maritalStatus', 4, 4, '婚姻状况代码', 'marital status', 'maritalStatusCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'GB/T 2261.2', 'loaded', 'schemas/codes/code_marital_GBT2261.2.csv', 'GB/T 2261.2-2003', 8, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('region', 5, 5, '地区/机构代码', 'region / org code (national CDC)', 'orgCode, reportZoneCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('drug', 6, 6, '药品代码', 'drug code', 'drugCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('examCategory', 7, 7, '检查类别代码', 'exam category', 'examinationTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('examItem', 8, 8, '检查项目代码', 'exam item', 'itemCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('examResult', 9, 9, '检查结果代码', 'exam result', 'examinationResultCode (exam)', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('labResult', 10, 10, '检验结果代码', 'lab test result (qualitative)', 'examinationResultCode (lab)', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, '前置软件值域10', 'partial', 'schemas/codes/code_lab_qualitative_result_partial.csv', 'schemas/codes@dd410fa', 3, now(), 'only the codes seen in a public adapter are known (阳性/阴性/未检出): partial');
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('diagnosis', 11, 11, '传染病诊断 ICD10 代码', 'infectious-disease diagnosis (ICD-10)', 'wmDiseaseCode, diseaseCode, wm*DiagnosisCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('nationality', 12, 12, '国籍代码', 'nationality (GB/T 2659)', 'nationalityCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('education', 13, 13, '文化程度代码', 'education (GB/T 4658)', 'educationCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'GB/T 4658', 'loaded', 'schemas/codes/code_education_GBT4658.csv', 'GB/T 4658-2006', 8, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('permanentAddr', 14, 14, '户籍地址类别代码', 'registered residence (region code)', 'permanentAddrCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, 'region', NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('currentAddr', 15, 15, '现住址类别代码', 'current address (region code)', 'currentAddrCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, 'region', NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('populationClass', 16, 16, '人群分类代码', 'population class', 'nultitudeTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, '传染病报告卡 人群分类', 'loaded', 'schemas/codes/code_population_class.csv', 'schemas/codes@dd410fa', 21, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('diagnosisStatus', 17, 17, '病例分类代码', 'case classification (diagnosis status)', 'diagnoseStateCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'NNDRS 交换代码 病例分类1', 'loaded', 'schemas/codes/code_diagnosis_status.csv', 'schemas/codes@dd410fa', 6, now(), 'list decided by the code file (docs/data-set.md, Domain 17/18)');
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('caseType', 18, 18, '诊断状态代码', 'case type (acute/chronic)', 'caseTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, 'NNDRS 交换代码 病例分类2', 'loaded', 'schemas/codes/code_case_type_acute_chronic.csv', 'schemas/codes@dd410fa', 3, now(), 'list decided by the code file (docs/data-set.md, Domain 17/18)');
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('bsTransmission', 19, 19, '传染病报告卡-血源及性传播/感染途径代码', 'report card: blood/sexual transmission route', 'bsTransmissionCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('deathCause', 20, 20, '传染病报告卡-直接死亡诊断代码', 'report card: direct cause of death', 'symptomsCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('discoveryMode', 21, 21, '发现方式代码', 'discovery mode', 'discoveryModeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('contactType', 22, 22, '传染病报告卡-接触方式代码', 'report card: contact type', 'contactTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('severity', 23, 23, '传染病报告卡-新冠临床严重程度代码', 'report card: clinical severity', 'ncvSeverityCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, '前置软件值域23（传染病报告卡）', 'loaded', 'schemas/codes/code_clinical_severity.csv', 'schemas/codes@dd410fa', 5, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('dept', 24, 24, '科室代码表', 'department', 'deptCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('activityType', 25, 25, '诊疗活动类型代码', 'encounter activity type', 'activityTypeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, '前置软件值域25', 'loaded', 'schemas/codes/code_activity_type.csv', 'schemas/codes@dd410fa', 9, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('tcmDisease', 26, 26, '中医病证分类与代码', 'TCM disease/syndrome (GB/T 15657)', 'tcm*DiagnosisCode, tcm*SyndromeCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('tcmTerm', 27, 27, '中医临床诊疗术语代码', 'TCM clinical terminology (GB/T 16751)', 'tcm*Code', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('familyRelation', 28, 28, '家庭关系代码', 'family relationship (GB/T 4761)', '—', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('payMethod', 29, 29, '医疗付费方式代码', 'payment method', 'payMethodCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('specimenCategory', 30, 30, '标本类别代码', 'specimen category', 'specimenCategoryCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('doseUnit', 31, 31, '药物剂量单位代码', 'drug dose unit', 'drugDosageUnitCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('outcome', 32, 32, '病情转归代码表', 'disease outcome', 'diseaseProgressionCode', 'numbered', 'value_domains.csv (CodeTypeEnum)', true, NULL, '前置软件值域32', 'loaded', 'schemas/codes/code_disease_outcome.csv', 'schemas/codes@dd410fa', 8, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('labVerdict', 33, NULL, '传染病报告卡-实验室检测结论代码', 'report card: laboratory verdict', 'laboratoryDetectionVerdictCode', 'named', 'the notice (seed-notice-zh.md 三.1 / (三)1: 传报卡实验室检测结论); no number known', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('nndrsDisease', 34, NULL, '传染病病种交换代码', 'NNDRS disease exchange code', 'diseaseCode (report card, national side)', 'candidate', 'schemas/codes/code_nndrs_disease_exchange.csv; not confirmed as one of the forty', true, NULL, 'NNDRS 交换代码', 'loaded', 'schemas/codes/code_nndrs_disease_exchange.csv', 'NNDRS 2022-02-28', 86, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('addressCategory', 35, NULL, '病人属于（地址类别）代码', 'address category (CV02.01.104)', 'afpAreatype1Code', 'candidate', 'schemas/codes/code_address_category.csv; not confirmed as one of the forty', true, NULL, 'CV02.01.104', 'loaded', 'schemas/codes/code_address_category.csv', 'schemas/codes@dd410fa', 6, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('labReferenceFlag', 36, NULL, '检验结果参考值标志', 'lab reference-range flag', 'examinationQuantificationRi', 'candidate', 'schemas/codes/code_lab_reference_flag_inferred.csv (inferred list); not confirmed as one of the forty', true, NULL, 'xa-erye-shwj', 'inferred', 'schemas/codes/code_lab_reference_flag_inferred.csv', 'schemas/codes@dd410fa', 3, now(), NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('unknown37', 37, NULL, '（未知值域 37）', 'unknown domain 37', '—', 'unknown', 'not known', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('unknown38', 38, NULL, '（未知值域 38）', 'unknown domain 38', '—', 'unknown', 'not known', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
INSERT INTO code_domain (domain, slot, domain_no, name_zh, name_en, fields, name_status, name_source, public_list, list_of, standard, list_status, list_source, list_version, code_count, loaded_at, note) VALUES ('unknown39', 39, NULL, '（未知值域 39）', 'unknown domain 39', '—', 'unknown', 'not known', false, NULL, NULL, 'none', NULL, NULL, 0, NULL, NULL);
-- The national lists of schemas/codes (schemas/codes/lists.ts).
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('idType', '01', 'WS 364.3-2011', '居民身份证', 'Resident identity card'),
  ('idType', '02', 'WS 364.3-2011', '居民户口簿', 'Household register booklet'),
  ('idType', '03', 'WS 364.3-2011', '护照', 'Passport'),
  ('idType', '04', 'WS 364.3-2011', '军官证', 'Military officer ID'),
  ('idType', '05', 'WS 364.3-2011', '驾驶证', 'Driving licence'),
  ('idType', '06', 'WS 364.3-2011', '港澳居民来往内地通行证', 'Mainland travel permit for HK/Macao residents'),
  ('idType', '07', 'WS 364.3-2011', '台湾居民来往内地通行证', 'Mainland travel permit for Taiwan residents'),
  ('idType', '99', 'WS 364.3-2011', '其他法定有效证件', 'Other legal ID');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('sex', '0', 'GB/T 2261.1-2003', '未知的性别', 'Unknown'),
  ('sex', '1', 'GB/T 2261.1-2003', '男性', 'Male'),
  ('sex', '2', 'GB/T 2261.1-2003', '女性', 'Female'),
  ('sex', '5', 'GB/T 2261.1-2003', '女性改(变)为男性', 'Female changed to male'),
  ('sex', '6', 'GB/T 2261.1-2003', '男性改(变)为女性', 'Male changed to female'),
  ('sex', '9', 'GB/T 2261.1-2003', '未说明的性别', 'Not stated');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('ethnicity', '01', 'GB/T 3304-1991', '汉族', 'Han'),
  ('ethnicity', '02', 'GB/T 3304-1991', '蒙古族', 'Mongol'),
  ('ethnicity', '03', 'GB/T 3304-1991', '回族', 'Hui'),
  ('ethnicity', '04', 'GB/T 3304-1991', '藏族', 'Zang (Tibetan)'),
  ('ethnicity', '05', 'GB/T 3304-1991', '维吾尔族', 'Uygur'),
  ('ethnicity', '06', 'GB/T 3304-1991', '苗族', 'Miao'),
  ('ethnicity', '07', 'GB/T 3304-1991', '彝族', 'Yi'),
  ('ethnicity', '08', 'GB/T 3304-1991', '壮族', 'Zhuang'),
  ('ethnicity', '09', 'GB/T 3304-1991', '布依族', 'Buyei'),
  ('ethnicity', '10', 'GB/T 3304-1991', '朝鲜族', 'Chosen (Korean)'),
  ('ethnicity', '11', 'GB/T 3304-1991', '满族', 'Man'),
  ('ethnicity', '12', 'GB/T 3304-1991', '侗族', 'Dong'),
  ('ethnicity', '13', 'GB/T 3304-1991', '瑶族', 'Yao'),
  ('ethnicity', '14', 'GB/T 3304-1991', '白族', 'Bai'),
  ('ethnicity', '15', 'GB/T 3304-1991', '土家族', 'Tujia'),
  ('ethnicity', '16', 'GB/T 3304-1991', '哈尼族', 'Hani'),
  ('ethnicity', '17', 'GB/T 3304-1991', '哈萨克族', 'Kazak'),
  ('ethnicity', '18', 'GB/T 3304-1991', '傣族', 'Dai'),
  ('ethnicity', '19', 'GB/T 3304-1991', '黎族', 'Li'),
  ('ethnicity', '20', 'GB/T 3304-1991', '傈僳族', 'Lisu'),
  ('ethnicity', '21', 'GB/T 3304-1991', '佤族', 'Va'),
  ('ethnicity', '22', 'GB/T 3304-1991', '畲族', 'She'),
  ('ethnicity', '23', 'GB/T 3304-1991', '高山族', 'Gaoshan'),
  ('ethnicity', '24', 'GB/T 3304-1991', '拉祜族', 'Lahu'),
  ('ethnicity', '25', 'GB/T 3304-1991', '水族', 'Sui'),
  ('ethnicity', '26', 'GB/T 3304-1991', '东乡族', 'Dongxiang'),
  ('ethnicity', '27', 'GB/T 3304-1991', '纳西族', 'Naxi'),
  ('ethnicity', '28', 'GB/T 3304-1991', '景颇族', 'Jingpo'),
  ('ethnicity', '29', 'GB/T 3304-1991', '柯尔克孜族', 'Kirgiz'),
  ('ethnicity', '30', 'GB/T 3304-1991', '土族', 'Tu'),
  ('ethnicity', '31', 'GB/T 3304-1991', '达斡尔族', 'Daur'),
  ('ethnicity', '32', 'GB/T 3304-1991', '仫佬族', 'Mulao'),
  ('ethnicity', '33', 'GB/T 3304-1991', '羌族', 'Qiang'),
  ('ethnicity', '34', 'GB/T 3304-1991', '布朗族', 'Blang'),
  ('ethnicity', '35', 'GB/T 3304-1991', '撒拉族', 'Salar'),
  ('ethnicity', '36', 'GB/T 3304-1991', '毛南族', 'Maonan'),
  ('ethnicity', '37', 'GB/T 3304-1991', '仡佬族', 'Gelao'),
  ('ethnicity', '38', 'GB/T 3304-1991', '锡伯族', 'Xibe'),
  ('ethnicity', '39', 'GB/T 3304-1991', '阿昌族', 'Achang'),
  ('ethnicity', '40', 'GB/T 3304-1991', '普米族', 'Pumi'),
  ('ethnicity', '41', 'GB/T 3304-1991', '塔吉克族', 'Tajik'),
  ('ethnicity', '42', 'GB/T 3304-1991', '怒族', 'Nu'),
  ('ethnicity', '43', 'GB/T 3304-1991', '乌孜别克族', 'Uzbek'),
  ('ethnicity', '44', 'GB/T 3304-1991', '俄罗斯族', 'Russ'),
  ('ethnicity', '45', 'GB/T 3304-1991', '鄂温克族', 'Ewenki'),
  ('ethnicity', '46', 'GB/T 3304-1991', '德昂族', 'Deang'),
  ('ethnicity', '47', 'GB/T 3304-1991', '保安族', 'Bonan'),
  ('ethnicity', '48', 'GB/T 3304-1991', '裕固族', 'Yugur'),
  ('ethnicity', '49', 'GB/T 3304-1991', '京族', 'Gin'),
  ('ethnicity', '50', 'GB/T 3304-1991', '塔塔尔族', 'Tatar'),
  ('ethnicity', '51', 'GB/T 3304-1991', '独龙族', 'Derung'),
  ('ethnicity', '52', 'GB/T 3304-1991', '鄂伦春族', 'Oroqen'),
  ('ethnicity', '53', 'GB/T 3304-1991', '赫哲族', 'Hezhen'),
  ('ethnicity', '54', 'GB/T 3304-1991', '门巴族', 'Monba'),
  ('ethnicity', '55', 'GB/T 3304-1991', '珞巴族', 'Lhoba'),
  ('ethnicity', '56', 'GB/T 3304-1991', '基诺族', 'Jino'),
  ('ethnicity', '97', 'GB/T 3304-1991', '其他', 'Other (unidentified)'),
  ('ethnicity', '98', 'GB/T 3304-1991', '外国血统中国籍人士', 'Naturalised citizen of foreign origin');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('maritalStatus', '10', 'GB/T 2261.2-2003', '未婚', 'Never married'),
  ('maritalStatus', '20', 'GB/T 2261.2-2003', '已婚', 'Married'),
  ('maritalStatus', '21', 'GB/T 2261.2-2003', '初婚', 'First marriage'),
  ('maritalStatus', '22', 'GB/T 2261.2-2003', '再婚', 'Remarried'),
  ('maritalStatus', '23', 'GB/T 2261.2-2003', '复婚', 'Remarried to former spouse'),
  ('maritalStatus', '30', 'GB/T 2261.2-2003', '丧偶', 'Widowed'),
  ('maritalStatus', '40', 'GB/T 2261.2-2003', '离婚', 'Divorced'),
  ('maritalStatus', '90', 'GB/T 2261.2-2003', '未说明的婚姻状况', 'Not stated');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('labResult', '01', 'schemas/codes@dd410fa', '阳性', 'Positive'),
  ('labResult', '02', 'schemas/codes@dd410fa', '阴性', 'Negative'),
  ('labResult', '07', 'schemas/codes@dd410fa', '未检出', 'Not detected');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('education', '10', 'GB/T 4658-2006', '研究生教育', 'Postgraduate'),
  ('education', '20', 'GB/T 4658-2006', '大学本科教育', 'Bachelor'),
  ('education', '30', 'GB/T 4658-2006', '大学专科教育', 'Junior college'),
  ('education', '40', 'GB/T 4658-2006', '中等职业教育', 'Secondary vocational'),
  ('education', '60', 'GB/T 4658-2006', '普通高级中学教育', 'Senior high school'),
  ('education', '70', 'GB/T 4658-2006', '初级中学教育', 'Junior high school'),
  ('education', '80', 'GB/T 4658-2006', '小学教育', 'Primary school'),
  ('education', '90', 'GB/T 4658-2006', '其他', 'Other');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('populationClass', '1', 'schemas/codes@dd410fa', '幼托儿童', 'Child in kindergarten/nursery'),
  ('populationClass', '2', 'schemas/codes@dd410fa', '散居儿童', 'Child cared for at home (scattered)'),
  ('populationClass', '3', 'schemas/codes@dd410fa', '学生（大中小学）', 'Student'),
  ('populationClass', '4', 'schemas/codes@dd410fa', '教师', 'Teacher'),
  ('populationClass', '5', 'schemas/codes@dd410fa', '保育员及保姆', 'Childcare worker / nanny'),
  ('populationClass', '6', 'schemas/codes@dd410fa', '餐饮食品业', 'Food & catering worker'),
  ('populationClass', '7', 'schemas/codes@dd410fa', '公共场所服务员', 'Public-venue service worker'),
  ('populationClass', '8', 'schemas/codes@dd410fa', '商业服务', 'Commercial service'),
  ('populationClass', '9', 'schemas/codes@dd410fa', '医务人员', 'Health-care worker'),
  ('populationClass', '10', 'schemas/codes@dd410fa', '工人', 'Worker'),
  ('populationClass', '11', 'schemas/codes@dd410fa', '民工', 'Migrant worker'),
  ('populationClass', '12', 'schemas/codes@dd410fa', '农民', 'Farmer'),
  ('populationClass', '13', 'schemas/codes@dd410fa', '牧民', 'Herdsman'),
  ('populationClass', '14', 'schemas/codes@dd410fa', '渔(船)民', 'Fisherman/boatman'),
  ('populationClass', '15', 'schemas/codes@dd410fa', '海员及长途驾驶员', 'Seafarer / long-distance driver'),
  ('populationClass', '16', 'schemas/codes@dd410fa', '干部职员', 'Cadre / office staff'),
  ('populationClass', '17', 'schemas/codes@dd410fa', '离退人员', 'Retired'),
  ('populationClass', '18', 'schemas/codes@dd410fa', '家务及待业', 'Houseworker / unemployed'),
  ('populationClass', '19', 'schemas/codes@dd410fa', '羁押人员', 'Detainee (seen in 2022 dict; VERIFY)'),
  ('populationClass', '20', 'schemas/codes@dd410fa', '不详', 'Unknown'),
  ('populationClass', '99', 'schemas/codes@dd410fa', '其他', 'Other (free text in nultitudeTypeOther, <=15 chars)');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('diagnosisStatus', '1', 'schemas/codes@dd410fa', '临床诊断病例', 'Clinically diagnosed case'),
  ('diagnosisStatus', '2', 'schemas/codes@dd410fa', '确诊病例', 'Laboratory-confirmed case'),
  ('diagnosisStatus', '3', 'schemas/codes@dd410fa', '疑似病例', 'Suspected case'),
  ('diagnosisStatus', '4', 'schemas/codes@dd410fa', '病原携带者', 'Pathogen carrier'),
  ('diagnosisStatus', '5', 'schemas/codes@dd410fa', '阳性检测', 'Positive test (e.g. HIV positive / asymptomatic infection)'),
  ('diagnosisStatus', '6', 'schemas/codes@dd410fa', '埃博拉留观病例', 'Ebola observation case');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('caseType', '1', 'schemas/codes@dd410fa', '急性', 'Acute'),
  ('caseType', '2', 'schemas/codes@dd410fa', '慢性', 'Chronic'),
  ('caseType', '3', 'schemas/codes@dd410fa', '未分型', 'Not typed');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('severity', '2', 'schemas/codes@dd410fa', '轻型', 'Mild'),
  ('severity', '6', 'schemas/codes@dd410fa', '普通型', 'Moderate (ordinary)'),
  ('severity', '3', 'schemas/codes@dd410fa', '重型', 'Severe'),
  ('severity', '4', 'schemas/codes@dd410fa', '危重型', 'Critical'),
  ('severity', '5', 'schemas/codes@dd410fa', '无症状感染者', 'Asymptomatic infection');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('activityType', '1', 'schemas/codes@dd410fa', '门诊', 'outpatient visit'),
  ('activityType', '2', 'schemas/codes@dd410fa', '急诊', 'emergency visit'),
  ('activityType', '3', 'schemas/codes@dd410fa', '留观入观', 'ED observation - admitted to observation'),
  ('activityType', '4', 'schemas/codes@dd410fa', '留观出观', 'ED observation - left observation'),
  ('activityType', '5', 'schemas/codes@dd410fa', '入院', 'admission'),
  ('activityType', '6', 'schemas/codes@dd410fa', '住院', 'inpatient stay'),
  ('activityType', '7', 'schemas/codes@dd410fa', '首次病程', 'first progress note'),
  ('activityType', '8', 'schemas/codes@dd410fa', '日常病程', 'daily progress note'),
  ('activityType', '9', 'schemas/codes@dd410fa', '出院', 'discharge');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('outcome', '1', 'schemas/codes@dd410fa', '治愈', 'Cured'),
  ('outcome', '2', 'schemas/codes@dd410fa', '好转', 'Improved'),
  ('outcome', '3', 'schemas/codes@dd410fa', '稳定', 'Stable'),
  ('outcome', '4', 'schemas/codes@dd410fa', '恶化', 'Worsened'),
  ('outcome', '5', 'schemas/codes@dd410fa', '未愈', 'Not cured'),
  ('outcome', '6', 'schemas/codes@dd410fa', '生存', 'Survived'),
  ('outcome', '7', 'schemas/codes@dd410fa', '死亡', 'Died'),
  ('outcome', '8', 'schemas/codes@dd410fa', '其他', 'Other');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('nndrsDisease', '0100', 'NNDRS 2022-02-28', '鼠疫', NULL),
  ('nndrsDisease', '0200', 'NNDRS 2022-02-28', '霍乱', NULL),
  ('nndrsDisease', '0300', 'NNDRS 2022-02-28', '病毒性肝炎', NULL),
  ('nndrsDisease', '0301', 'NNDRS 2022-02-28', '甲肝', NULL),
  ('nndrsDisease', '0302', 'NNDRS 2022-02-28', '乙肝', NULL),
  ('nndrsDisease', '0303', 'NNDRS 2022-02-28', '丙肝', NULL),
  ('nndrsDisease', '0306', 'NNDRS 2022-02-28', '丁肝', NULL),
  ('nndrsDisease', '0304', 'NNDRS 2022-02-28', '戊肝', NULL),
  ('nndrsDisease', '0305', 'NNDRS 2022-02-28', '肝炎（未分型）', NULL),
  ('nndrsDisease', '0400', 'NNDRS 2022-02-28', '痢疾', NULL),
  ('nndrsDisease', '0401', 'NNDRS 2022-02-28', '细菌性痢疾', NULL),
  ('nndrsDisease', '0402', 'NNDRS 2022-02-28', '阿米巴性痢疾', NULL),
  ('nndrsDisease', '0500', 'NNDRS 2022-02-28', '伤寒+副伤寒', NULL),
  ('nndrsDisease', '0501', 'NNDRS 2022-02-28', '伤寒', NULL),
  ('nndrsDisease', '0502', 'NNDRS 2022-02-28', '副伤寒', NULL),
  ('nndrsDisease', '0600', 'NNDRS 2022-02-28', '艾滋病', NULL),
  ('nndrsDisease', '0601', 'NNDRS 2022-02-28', 'HIV', NULL),
  ('nndrsDisease', '0700', 'NNDRS 2022-02-28', '淋病', NULL),
  ('nndrsDisease', '0800', 'NNDRS 2022-02-28', '梅毒', NULL),
  ('nndrsDisease', '0801', 'NNDRS 2022-02-28', 'Ⅰ期梅毒', NULL),
  ('nndrsDisease', '0802', 'NNDRS 2022-02-28', 'Ⅱ期梅毒', NULL),
  ('nndrsDisease', '0803', 'NNDRS 2022-02-28', 'Ⅲ期梅毒', NULL),
  ('nndrsDisease', '0804', 'NNDRS 2022-02-28', '胎传梅毒', NULL),
  ('nndrsDisease', '0805', 'NNDRS 2022-02-28', '隐性梅毒', NULL),
  ('nndrsDisease', '0900', 'NNDRS 2022-02-28', '脊灰', NULL),
  ('nndrsDisease', '1000', 'NNDRS 2022-02-28', '麻疹', NULL),
  ('nndrsDisease', '1100', 'NNDRS 2022-02-28', '百日咳', NULL),
  ('nndrsDisease', '1200', 'NNDRS 2022-02-28', '白喉', NULL),
  ('nndrsDisease', '1300', 'NNDRS 2022-02-28', '流脑', NULL),
  ('nndrsDisease', '1400', 'NNDRS 2022-02-28', '猩红热', NULL),
  ('nndrsDisease', '1500', 'NNDRS 2022-02-28', '出血热', NULL),
  ('nndrsDisease', '1600', 'NNDRS 2022-02-28', '狂犬病', NULL),
  ('nndrsDisease', '1700', 'NNDRS 2022-02-28', '钩体病', NULL),
  ('nndrsDisease', '1800', 'NNDRS 2022-02-28', '布病', NULL),
  ('nndrsDisease', '1900', 'NNDRS 2022-02-28', '炭疽', NULL),
  ('nndrsDisease', '1901', 'NNDRS 2022-02-28', '肺炭疽', NULL),
  ('nndrsDisease', '1902', 'NNDRS 2022-02-28', '皮肤炭疽', NULL),
  ('nndrsDisease', '1903', 'NNDRS 2022-02-28', '炭疽（未分型）', NULL),
  ('nndrsDisease', '2000', 'NNDRS 2022-02-28', '斑疹伤寒', NULL),
  ('nndrsDisease', '2100', 'NNDRS 2022-02-28', '乙脑', NULL),
  ('nndrsDisease', '2200', 'NNDRS 2022-02-28', '黑热病', NULL),
  ('nndrsDisease', '2300', 'NNDRS 2022-02-28', '疟疾', NULL),
  ('nndrsDisease', '2301', 'NNDRS 2022-02-28', '间日疟', NULL),
  ('nndrsDisease', '2302', 'NNDRS 2022-02-28', '恶性疟', NULL),
  ('nndrsDisease', '2303', 'NNDRS 2022-02-28', '疟疾（未分型）', NULL),
  ('nndrsDisease', '2400', 'NNDRS 2022-02-28', '登革热', NULL),
  ('nndrsDisease', '2500', 'NNDRS 2022-02-28', '新生儿破伤风', NULL),
  ('nndrsDisease', '2600', 'NNDRS 2022-02-28', '肺结核', NULL),
  ('nndrsDisease', '2605', 'NNDRS 2022-02-28', '利福平耐药', NULL),
  ('nndrsDisease', '2606', 'NNDRS 2022-02-28', '病原学阳性', NULL),
  ('nndrsDisease', '2607', 'NNDRS 2022-02-28', '病原学阴性', NULL),
  ('nndrsDisease', '2608', 'NNDRS 2022-02-28', '无病原学结果', NULL),
  ('nndrsDisease', '2700', 'NNDRS 2022-02-28', '传染性非典', NULL),
  ('nndrsDisease', '3100', 'NNDRS 2022-02-28', '血吸虫病', NULL),
  ('nndrsDisease', '3200', 'NNDRS 2022-02-28', '丝虫病', NULL),
  ('nndrsDisease', '3300', 'NNDRS 2022-02-28', '包虫病', NULL),
  ('nndrsDisease', '3400', 'NNDRS 2022-02-28', '麻风病', NULL),
  ('nndrsDisease', '3500', 'NNDRS 2022-02-28', '流行性感冒', NULL),
  ('nndrsDisease', '3600', 'NNDRS 2022-02-28', '流行性腮腺炎', NULL),
  ('nndrsDisease', '3700', 'NNDRS 2022-02-28', '风疹', NULL),
  ('nndrsDisease', '3800', 'NNDRS 2022-02-28', '急性出血性结膜炎', NULL),
  ('nndrsDisease', '3900', 'NNDRS 2022-02-28', '其它感染性腹泻病', NULL),
  ('nndrsDisease', '4000', 'NNDRS 2022-02-28', '手足口病', NULL),
  ('nndrsDisease', '9900', 'NNDRS 2022-02-28', '人感染高致病性禽流感', NULL),
  ('nndrsDisease', '5200', 'NNDRS 2022-02-28', '人感染H7N9禽流感', NULL),
  ('nndrsDisease', '5300', 'NNDRS 2022-02-28', '新型冠状病毒肺炎', NULL),
  ('nndrsDisease', '9801', 'NNDRS 2022-02-28', '非淋菌性尿道炎', NULL),
  ('nndrsDisease', '9802', 'NNDRS 2022-02-28', '尖锐湿疣', NULL),
  ('nndrsDisease', '9803', 'NNDRS 2022-02-28', '生殖器疱疹', NULL),
  ('nndrsDisease', '9804', 'NNDRS 2022-02-28', '生殖道沙眼衣原体感染', NULL),
  ('nndrsDisease', '9811', 'NNDRS 2022-02-28', '水痘', NULL),
  ('nndrsDisease', '9812', 'NNDRS 2022-02-28', '森林脑炎', NULL),
  ('nndrsDisease', '9813', 'NNDRS 2022-02-28', '结核性胸膜炎', NULL),
  ('nndrsDisease', '9815', 'NNDRS 2022-02-28', '人感染猪链球菌', NULL),
  ('nndrsDisease', '9821', 'NNDRS 2022-02-28', '肝吸虫病', NULL),
  ('nndrsDisease', '9822', 'NNDRS 2022-02-28', '恙虫病', NULL),
  ('nndrsDisease', '9823', 'NNDRS 2022-02-28', '人粒细胞无形体病', NULL),
  ('nndrsDisease', '9824', 'NNDRS 2022-02-28', '发热伴血小板减少综合征', NULL),
  ('nndrsDisease', '9825', 'NNDRS 2022-02-28', 'AFP', NULL),
  ('nndrsDisease', '9827', 'NNDRS 2022-02-28', '中东呼吸综合征（MERS）', NULL),
  ('nndrsDisease', '9828', 'NNDRS 2022-02-28', '埃博拉出血热', NULL),
  ('nndrsDisease', '9829', 'NNDRS 2022-02-28', '寨卡病毒病', NULL),
  ('nndrsDisease', '9891', 'NNDRS 2022-02-28', '不明原因肺炎', NULL),
  ('nndrsDisease', '9898', 'NNDRS 2022-02-28', '不明原因', NULL),
  ('nndrsDisease', '9899', 'NNDRS 2022-02-28', '其它', NULL),
  ('nndrsDisease', '5000', 'NNDRS 2022-02-28', '其它疾病', NULL);
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('addressCategory', '1', 'schemas/codes@dd410fa', '本县区', 'This county/district'),
  ('addressCategory', '2', 'schemas/codes@dd410fa', '本市其它县区', 'Other county, same city'),
  ('addressCategory', '3', 'schemas/codes@dd410fa', '本省其它地市', 'Other city, same province'),
  ('addressCategory', '4', 'schemas/codes@dd410fa', '其他省', 'Other province'),
  ('addressCategory', '5', 'schemas/codes@dd410fa', '港澳台', 'HK/Macao/Taiwan'),
  ('addressCategory', '6', 'schemas/codes@dd410fa', '外籍', 'Foreign');
INSERT INTO code_national (domain, code, version, name, name_en) VALUES
  ('labReferenceFlag', '0', 'schemas/codes@dd410fa', '正常', 'Within range'),
  ('labReferenceFlag', '1', 'schemas/codes@dd410fa', '低于参考值', 'Below range'),
  ('labReferenceFlag', '2', 'schemas/codes@dd410fa', '高于参考值', 'Above range');
-- END GENERATED
